/* SHA-256 (FIPS 180-4), incremental: init, update any number of times, final. Portable C99: words are
 * assembled from bytes with shifts, so neither byte order nor alignment of the input matters. */
#ifndef TW_SHA256_H
#define TW_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TW_SHA256_DIGEST_LEN 32

typedef struct tw_sha256 {
    uint32_t state[8];
    uint64_t total_len; /* bytes hashed so far */
    uint8_t block[64];
    size_t block_len;   /* bytes waiting in block */
} tw_sha256;

void tw_sha256_init(tw_sha256 *ctx);
void tw_sha256_update(tw_sha256 *ctx, const uint8_t *data, size_t len);
void tw_sha256_final(tw_sha256 *ctx, uint8_t digest[TW_SHA256_DIGEST_LEN]);

/* Lowercase hex of a digest into out (64 chars, not NUL-terminated). */
void tw_sha256_hex(const uint8_t digest[TW_SHA256_DIGEST_LEN], char out[2 * TW_SHA256_DIGEST_LEN]);

#endif
