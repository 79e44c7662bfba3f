// Offline verification of a cache device (`blockcache check`): superblock
// copies, geometry, every metadata record, duplicate mappings, and optionally
// the data checksum of every clean block. Read-only.
import { BlockDevice } from '../devices/block-device.js';
import { MetadataRecord, RECORD_DATA_CRC, RECORD_DIRTY, RECORD_EMPTY, RECORD_FOUND, RECORD_VALID } from '../format/record.js';
import { Superblock } from '../format/superblock.js';
import { crc32c } from '../stdx/checksum.js';
import { SetMapping } from '../cache/set-mapping.js';
import { MetadataStore, readSuperblock } from './metadata-store.js';

export interface CheckReport {
  superblock: Superblock;
  damagedSuperblockCopies: number;
  emptyRecords: number;
  invalidRecords: number;
  cleanRecords: number;
  dirtyRecords: number;
  corruptRecords: number;
  duplicateMappings: number;
  dataChecked: number;
  dataMismatches: number;
  problems: string[];
}

export async function checkCache(device: BlockDevice, options: { verifyData?: boolean } = {}): Promise<CheckReport> {
  const { superblock, damagedCopies } = await readSuperblock(device);
  const store = MetadataStore.open(device, superblock);
  const mapping = new SetMapping(superblock.cacheBlocks, superblock.assoc);
  const report: CheckReport = {
    superblock, damagedSuperblockCopies: damagedCopies, emptyRecords: 0, invalidRecords: 0, cleanRecords: 0,
    dirtyRecords: 0, corruptRecords: 0, duplicateMappings: 0, dataChecked: 0, dataMismatches: 0, problems: [],
  };
  const owners = new Map<number, number>();
  const toVerify: Array<{ slot: number; dataCrc: number }> = [];
  const record: MetadataRecord = { originBlock: 0, sequence: 0, dataCrc: 0, flags: 0 };
  const corrupt = (slot: number, reason: string) => {
    report.corruptRecords++;
    if (report.problems.length < 20) report.problems.push(`record ${slot}: ${reason}`);
  };
  await store.scan({
    blocksMultiple: 1,
    visit: (chunk) => {
      for (let slot = chunk.firstCacheBlock; slot < chunk.firstCacheBlock + chunk.blockCount; slot++) {
        const status = chunk.decode(slot, record);
        if (status === RECORD_EMPTY) { report.emptyRecords++; continue; }
        if (status !== RECORD_FOUND) { corrupt(slot, chunk.corruptReason(status, slot)); continue; }
        if (mapping.setOf(record.originBlock) !== mapping.setOfCacheBlock(slot)) {
          corrupt(slot, `origin block ${record.originBlock} belongs to set ${mapping.setOf(record.originBlock)}, not ${mapping.setOfCacheBlock(slot)}`);
          continue;
        }
        if ((record.flags & RECORD_VALID) === 0) { report.invalidRecords++; continue; }
        if ((record.flags & RECORD_DIRTY) !== 0) report.dirtyRecords++;
        else report.cleanRecords++;
        if (owners.has(record.originBlock)) report.duplicateMappings++;
        owners.set(record.originBlock, slot);
        if (options.verifyData && (record.flags & (RECORD_DIRTY | RECORD_DATA_CRC)) === RECORD_DATA_CRC) toVerify.push({ slot, dataCrc: record.dataCrc });
      }
    },
  });
  const buffer = Buffer.allocUnsafe(superblock.blockBytes);
  for (const { slot, dataCrc } of toVerify) {
    await device.read(buffer, superblock.dataOffsetBytes + slot * superblock.blockBytes);
    report.dataChecked++;
    if (crc32c(buffer) !== dataCrc) report.dataMismatches++;
  }
  if (damagedCopies > 0) report.problems.push(`${damagedCopies} superblock copy damaged (the other one is used)`);
  if (report.duplicateMappings > 0) report.problems.push(`${report.duplicateMappings} origin blocks mapped by more than one valid record (recovery keeps the newest)`);
  // A clean block whose data no longer matches is legal after a crash (recovery drops it), so it is reported, not counted as damage.
  return report;
}

/** Damage is what recovery cannot repair without losing data or a copy of the superblock. */
export function isDamaged(report: CheckReport): boolean {
  return report.damagedSuperblockCopies > 0 || report.corruptRecords > 0;
}
