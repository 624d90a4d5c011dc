// SHA-256 in C: a portable compression function and one with the x86 SHA extensions (sha256rnds2,
// sha256msg1/2: four rounds per instruction pair), chosen at run time. The model id of a CLIP folder
// is the sha256 of a file of hundreds of megabytes, hashed at every load.
#include "CSHA256.h"

#include <string.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t rotr(uint32_t x, int n) { return x >> n | x << (32 - n); }

static inline uint32_t load_be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    for (; blocks > 0; blocks--, data += 64) {
        for (int t = 0; t < 16; t++) w[t] = load_be32(data + 4 * t);
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[t] + w[t];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

#if defined(__x86_64__)
/* The state lives as two vectors, ABEF and CDGH (the order sha256rnds2 takes); each 16-byte group of
   the message, byte-swapped to big-endian words, plus four round constants feeds two sha256rnds2 (two
   rounds each); groups 4..15 of the schedule come from the previous four via sha256msg1/msg2. */
__attribute__((target("sha,sse4.1,ssse3")))
static void blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    __m128i tmp = _mm_loadu_si128((const __m128i *)&state[0]);     /* DCBA */
    __m128i state1 = _mm_loadu_si128((const __m128i *)&state[4]);  /* HGFE */
    tmp = _mm_shuffle_epi32(tmp, 0xB1);                             /* CDAB */
    state1 = _mm_shuffle_epi32(state1, 0x1B);                       /* EFGH */
    __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);               /* ABEF */
    state1 = _mm_blend_epi16(state1, tmp, 0xF0);                    /* CDGH */
    for (; blocks > 0; blocks--, data += 64) {
        const __m128i abef = state0, cdgh = state1;
        __m128i w[4];
        for (int g = 0; g < 16; g++) {
            __m128i group;
            if (g < 4) {
                group = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * g)), byteswap);
            } else {
                /* W[t..t+3] = W[t-16] + s0(W[t-15]) + W[t-7] + s1(W[t-2]) */
                group = _mm_sha256msg1_epu32(w[g & 3], w[(g + 1) & 3]);
                group = _mm_add_epi32(group, _mm_alignr_epi8(w[(g + 3) & 3], w[(g + 2) & 3], 4));
                group = _mm_sha256msg2_epu32(group, w[(g + 3) & 3]);
            }
            w[g & 3] = group;
            __m128i message = _mm_add_epi32(group, _mm_loadu_si128((const __m128i *)&K[4 * g]));
            state1 = _mm_sha256rnds2_epu32(state1, state0, message);
            state0 = _mm_sha256rnds2_epu32(state0, state1, _mm_shuffle_epi32(message, 0x0E));
        }
        state0 = _mm_add_epi32(state0, abef);
        state1 = _mm_add_epi32(state1, cdgh);
    }
    tmp = _mm_shuffle_epi32(state0, 0x1B);           /* FEBA */
    state1 = _mm_shuffle_epi32(state1, 0xB1);        /* DCHG */
    state0 = _mm_blend_epi16(tmp, state1, 0xF0);     /* DCBA */
    state1 = _mm_alignr_epi8(state1, tmp, 8);        /* HGFE */
    _mm_storeu_si128((__m128i *)&state[0], state0);
    _mm_storeu_si128((__m128i *)&state[4], state1);
}
#endif

int hk_sha256_accelerated(void) {
#if defined(__x86_64__)
    static int available = -1; /* racing first calls compute the same value */
    if (available < 0) {
        __builtin_cpu_init();
        unsigned int eax, ebx, ecx, edx;
        /* CPUID leaf 7, subleaf 0: EBX bit 29 = SHA extensions; SSE4.1 from leaf 1. */
        __asm__ volatile("cpuid" : "=a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx) : "a"(7), "c"(0));
        available = (ebx >> 29 & 1) && __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3");
    }
    return available;
#else
    return 0;
#endif
}

static void digest_with(void (*blocks)(uint32_t *, const uint8_t *, size_t), const uint8_t *bytes, size_t count,
                        uint8_t digest[32]) {
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    size_t full = count / 64;
    blocks(state, bytes, full);
    /* Padding: 0x80, zeros, then the length in bits as a big-endian 64-bit number (one or two blocks). */
    uint8_t tail[128] = {0};
    size_t rest = count - full * 64;
    if (rest > 0) memcpy(tail, bytes + full * 64, rest);
    tail[rest] = 0x80;
    size_t tail_blocks = rest < 56 ? 1 : 2;
    uint64_t bits = (uint64_t)count * 8;
    for (int i = 0; i < 8; i++) tail[tail_blocks * 64 - 1 - i] = (uint8_t)(bits >> (8 * i));
    blocks(state, tail, tail_blocks);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(state[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(state[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(state[i] >> 8);
        digest[4 * i + 3] = (uint8_t)state[i];
    }
}

void hk_sha256_portable(const uint8_t *bytes, size_t count, uint8_t digest[32]) {
    digest_with(blocks_portable, bytes, count, digest);
}

void hk_sha256(const uint8_t *bytes, size_t count, uint8_t digest[32]) {
#if defined(__x86_64__)
    if (hk_sha256_accelerated()) {
        digest_with(blocks_shani, bytes, count, digest);
        return;
    }
#endif
    digest_with(blocks_portable, bytes, count, digest);
}
