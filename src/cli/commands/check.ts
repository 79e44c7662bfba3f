// blockcache check: verify a cache device's superblock and metadata offline.
import { Command, parseOptions, required } from '../command.js';
import { openDevice } from '../../devices/open-device.js';
import { checkCache, isDamaged } from '../../metadata/check.js';

const HELP = `usage: blockcache check --cache DEV [--json] [--data]

Verifies the superblock copies and every metadata record; exits 1 on damage.

  --cache DEV      the cache device (the server should be stopped)
  --data           also verify the data checksum of every clean block
  --json           print the report as JSON
  -h, --help       show this help`;

export const checkCommand: Command = {
  name: 'check',
  summary: 'verify a cache device offline',
  help: HELP,
  async run(argv) {
    const { values } = parseOptions(argv, { cache: { type: 'string' }, json: { type: 'boolean' }, data: { type: 'boolean' } });
    const cache = await openDevice(required<string>(values.cache, '--cache'));
    try {
      const report = await checkCache(cache.device, { verifyData: values.data });
      const damaged = isDamaged(report);
      const { superblock } = report;
      const summary = {
        ok: !damaged, uuid: superblock.uuid.toString('hex'), mode: superblock.mode, blockSize: superblock.blockBytes,
        cacheBlocks: superblock.cacheBlocks, cleanShutdown: superblock.cleanShutdown, damagedSuperblockCopies: report.damagedSuperblockCopies,
        emptyRecords: report.emptyRecords, invalidRecords: report.invalidRecords, cleanRecords: report.cleanRecords,
        dirtyRecords: report.dirtyRecords, corruptRecords: report.corruptRecords, duplicateMappings: report.duplicateMappings,
        dataChecked: report.dataChecked, dataMismatches: report.dataMismatches, problems: report.problems,
      };
      if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stdout.write(`${damaged ? 'DAMAGED' : 'ok'}: ${superblock.cacheBlocks} blocks; ${report.cleanRecords} clean, ${report.dirtyRecords} dirty, `
          + `${report.corruptRecords} corrupt records; ${report.damagedSuperblockCopies} damaged superblock copies; `
          + `${superblock.cleanShutdown ? 'shut down cleanly' : 'not shut down cleanly (recovery runs at serve)'}\n`);
        if (values.data) process.stdout.write(`data: ${report.dataChecked} clean blocks checked, ${report.dataMismatches} differ from their checksum (dropped at recovery)\n`);
        for (const problem of report.problems) process.stdout.write(`  ${problem}\n`);
      }
      return damaged ? 1 : 0;
    } finally {
      await cache.device.close();
    }
  },
};
