// Time one password hash the way better-auth hashes at sign-up and verifies
// at sign-in: its exported hashPassword (scrypt N=16384 r=16 p=1, 64-byte
// key, node:crypto on libuv's thread pool). The unit of its sign-in limit,
// as examples/hash_cost.rs is latchkey's.
//
//   node hash_cost.mjs [ROUNDS [CONCURRENT]]
//
// Prints the median seconds per hash. With CONCURRENT > 1, that many hashes
// run at once (libuv runs up to UV_THREADPOOL_SIZE, default 4, in parallel),
// each timed from its own start to its own end.
import { hashPassword } from "better-auth/crypto";

const rounds = Number(process.argv[2] ?? "21");
const concurrent = Math.max(1, Number(process.argv[3] ?? "1"));

await hashPassword("warm-up-password");
const times = [];
for (let i = 0; i < rounds; i++) {
  await Promise.all(
    Array.from({ length: concurrent }, async () => {
      const start = process.hrtime.bigint();
      await hashPassword("Tr1cky-Lantern-Owl");
      times.push(Number(process.hrtime.bigint() - start) / 1e9);
    }),
  );
}
times.sort((a, b) => a - b);
console.log(times[Math.floor(times.length / 2)].toFixed(6));
