#include "tw_sha256.h"

#include <string.h>

/* First 32 bits of the fractional parts of the cube roots of the first 64 primes (FIPS 180-4, 4.2.2). */
static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))
#define CHOOSE(e, f, g) (((e) & (f)) ^ (~(e) & (g)))
#define MAJORITY(a, b, c) (((a) & (b)) ^ ((a) & (c)) ^ ((b) & (c)))
#define SUM0(a) (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22))
#define SUM1(e) (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25))
#define SIGMA0(w) (ROTR(w, 7) ^ ROTR(w, 18) ^ ((w) >> 3))
#define SIGMA1(w) (ROTR(w, 17) ^ ROTR(w, 19) ^ ((w) >> 10))

/* The message schedule is kept as a ring of 16 words: word i (i >= 16) replaces word i - 16. */
#define SCHEDULE(i)                                                                                             \
    (w[(i) & 15] += SIGMA1(w[((i) - 2) & 15]) + w[((i) - 7) & 15] + SIGMA0(w[((i) - 15) & 15]))

/* One round, with the eight working variables renamed instead of moved (FIPS 180-4, 6.2.2 step 3). */
#define ROUND(a, b, c, d, e, f, g, h, i, word)                                                                  \
    do {                                                                                                        \
        uint32_t t1 = (h) + SUM1(e) + CHOOSE(e, f, g) + round_constants[i] + (word);                            \
        (d) += t1;                                                                                              \
        (h) = t1 + SUM0(a) + MAJORITY(a, b, c);                                                                 \
    } while (0)

#define EIGHT_ROUNDS(i, W)                                                                                      \
    do {                                                                                                        \
        ROUND(a, b, c, d, e, f, g, h, (i) + 0, W((i) + 0));                                                     \
        ROUND(h, a, b, c, d, e, f, g, (i) + 1, W((i) + 1));                                                     \
        ROUND(g, h, a, b, c, d, e, f, (i) + 2, W((i) + 2));                                                     \
        ROUND(f, g, h, a, b, c, d, e, (i) + 3, W((i) + 3));                                                     \
        ROUND(e, f, g, h, a, b, c, d, (i) + 4, W((i) + 4));                                                     \
        ROUND(d, e, f, g, h, a, b, c, (i) + 5, W((i) + 5));                                                     \
        ROUND(c, d, e, f, g, h, a, b, (i) + 6, W((i) + 6));                                                     \
        ROUND(b, c, d, e, f, g, h, a, (i) + 7, W((i) + 7));                                                     \
    } while (0)

#define FIRST(i) (w[i])

static void compress(uint32_t state[8], const uint8_t block[64])
{
    uint32_t w[16];
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    unsigned i;

    for (i = 0; i < 16; i++)
        w[i] = load_be32(block + 4 * i);
    EIGHT_ROUNDS(0, FIRST);
    EIGHT_ROUNDS(8, FIRST);
    for (i = 16; i < 64; i += 8)
        EIGHT_ROUNDS(i, SCHEDULE);
    state[0] += a, state[1] += b, state[2] += c, state[3] += d;
    state[4] += e, state[5] += f, state[6] += g, state[7] += h;
}

void tw_sha256_init(tw_sha256 *ctx)
{
    /* First 32 bits of the fractional parts of the square roots of the first 8 primes (4.2.2 / 5.3.3). */
    static const uint32_t initial[8] = {
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    };
    memcpy(ctx->state, initial, sizeof(initial));
    ctx->total_len = 0;
    ctx->block_len = 0;
}

void tw_sha256_update(tw_sha256 *ctx, const uint8_t *data, size_t len)
{
    if (len == 0)
        return; /* data may then be NULL */
    ctx->total_len += len;
    if (ctx->block_len > 0) {
        size_t take = 64 - ctx->block_len;
        if (take > len)
            take = len;
        memcpy(ctx->block + ctx->block_len, data, take);
        ctx->block_len += take;
        data += take;
        len -= take;
        if (ctx->block_len < 64)
            return;
        compress(ctx->state, ctx->block);
        ctx->block_len = 0;
    }
    while (len >= 64) {
        compress(ctx->state, data);
        data += 64;
        len -= 64;
    }
    if (len > 0) {
        memcpy(ctx->block, data, len);
        ctx->block_len = len;
    }
}

void tw_sha256_final(tw_sha256 *ctx, uint8_t digest[TW_SHA256_DIGEST_LEN])
{
    uint64_t bit_len = ctx->total_len * 8;
    unsigned i;

    /* Padding (5.1.1): a 1 bit, zeros up to 56 mod 64, then the message length in bits, big-endian. */
    ctx->block[ctx->block_len++] = 0x80;
    if (ctx->block_len > 56) {
        memset(ctx->block + ctx->block_len, 0, 64 - ctx->block_len);
        compress(ctx->state, ctx->block);
        ctx->block_len = 0;
    }
    memset(ctx->block + ctx->block_len, 0, 56 - ctx->block_len);
    for (i = 0; i < 8; i++)
        ctx->block[56 + i] = (uint8_t)(bit_len >> (56 - 8 * i));
    compress(ctx->state, ctx->block);
    for (i = 0; i < 8; i++)
        store_be32(digest + 4 * i, ctx->state[i]);
    ctx->block_len = 0;
}

void tw_sha256_hex(const uint8_t digest[TW_SHA256_DIGEST_LEN], char out[2 * TW_SHA256_DIGEST_LEN])
{
    static const char hex[] = "0123456789abcdef";
    unsigned i;
    for (i = 0; i < TW_SHA256_DIGEST_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 15];
    }
}
