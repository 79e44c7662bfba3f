// A small seeded PRNG (xoshiro128**) so tests and simulations replay exactly
// from a seed. Testing only; never imported by the product.

export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // splitmix32 to spread the seed over the state
    let s = seed >>> 0;
    const next = () => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next(); this.b = next(); this.c = next(); this.d = next();
  }

  /** A uniformly distributed uint32. */
  next(): number {
    const result = Math.imul(((Math.imul(this.b, 5) << 7) | (Math.imul(this.b, 5) >>> 25)), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a; this.d ^= this.b; this.b ^= this.c; this.a ^= this.d;
    this.c ^= t;
    this.d = (this.d << 11) | (this.d >>> 21);
    return result;
  }

  /** An integer in [0, bound). */
  below(bound: number): number {
    return Math.floor((this.next() / 2 ** 32) * bound);
  }

  chance(probability: number): boolean {
    return this.next() / 2 ** 32 < probability;
  }

  bytes(length: number): Buffer {
    const buffer = Buffer.allocUnsafe(length);
    let i = 0;
    for (; i + 4 <= length; i += 4) buffer.writeUInt32LE(this.next(), i);
    for (; i < length; i++) buffer[i] = this.next() & 0xff;
    return buffer;
  }
}
