#ifndef HEADTUNE_CSHA256_H
#define HEADTUNE_CSHA256_H

#include <stddef.h>
#include <stdint.h>

/// SHA-256 (FIPS 180-4) of `count` bytes into `digest` (32 bytes, big-endian words as the standard
/// prints them). Uses the x86 SHA extensions (SHA-NI) where the CPU has them, portable C elsewhere.
void hk_sha256(const uint8_t *bytes, size_t count, uint8_t digest[32]);

/// The same with the portable C compression only (tests compare the two paths).
void hk_sha256_portable(const uint8_t *bytes, size_t count, uint8_t digest[32]);

/// Whether hk_sha256 runs the SHA-NI path on this CPU.
int hk_sha256_accelerated(void);

#endif
