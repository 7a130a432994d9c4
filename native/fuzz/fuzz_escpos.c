/* libFuzzer entry for the ESC/POS decoder.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_escpos.c native/escpos.c \
 *         native/tw_*.c -o native/fuzz/fuzz_escpos
 *   native/fuzz/fuzz_escpos native/fuzz/corpus/escpos
 *
 * Input: byte 0 picks the mode (bit 0: from_device, bit 1: images, bit 2: drawer_open_level low); the rest is
 * the stream. It is decoded twice,
 * fed whole and fed in chunks whose sizes come from a generator seeded with the input, and the two outputs must
 * be identical (chunk invariance); from_device streams also get note_request() calls at points the generator
 * picks, the same ones in both runs. The output must be a well-formed sequence of {"type": str, "data": map}.
 * Profile tables are small synthetic ones built here: code points of 1, 2 and 3 UTF-8 bytes, U+FFFD, a
 * national character set, Kanji lead bytes and holes in the double-byte table.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escpos.h"
#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

#define N_CODEPAGES 3
#define N_CHARSETS 2

static int16_t codepage_index[256];
static uint16_t codepages[N_CODEPAGES * 128];
static int16_t charset_index[256];
static uint16_t charsets[N_CHARSETS * 128];
static uint16_t kanji_single[128];
static uint16_t kanji_double[128 * 256];

static void build_tables(void)
{
    static int built;
    unsigned i, t;
    if (built)
        return;
    for (i = 0; i < 256; i++)
        codepage_index[i] = charset_index[i] = -1;
    codepage_index[0] = 0;
    codepage_index[2] = 1;
    codepage_index[16] = 2;
    codepage_index[19] = 1;
    charset_index[0] = 0;
    charset_index[3] = 1;
    for (i = 0; i < 128; i++) {
        codepages[i] = (uint16_t)(0x80 + i);                                 /* 2-byte UTF-8 */
        codepages[128 + i] = i % 5 == 0 ? 0xfffd : (uint16_t)(0x400 + i);   /* holes */
        codepages[256 + i] = (uint16_t)(0x3000 + i);                         /* 3-byte UTF-8 */
        charsets[i] = (uint16_t)i;
        charsets[128 + i] = (uint16_t)i;
        /* Kanji: 0x81-0x9f and 0xe0-0xef are lead bytes, the rest single characters */
        kanji_single[i] = ((i >= 0x01 && i <= 0x1f) || (i >= 0x60 && i <= 0x6f)) ? 0 : (uint16_t)(0xff00 + i);
        for (t = 0x40; t < 256; t++)
            kanji_double[i * 256 + t] = (t % 7 == 0) ? 0 : (uint16_t)(0x4e00 + i * 64 + (t & 63));
    }
    charsets[128 + 0x23] = 0xa3;   /* a national set: £ ... */
    charsets[128 + 0x40] = 0x20ac; /* ... and a 3-byte one */
    charsets[128 + 0x7e] = 0xaf;
    built = 1;
}

static const char *const request_kinds[] = {"printer", "offline", "error", "paper", "drawer", "paper_sensor",
                                            "ink", "id", "asb", "counter", "made_up"};

/* Feeds data in chunks (chunked != 0) or whole; returns the decoder's output in out. */
static void decode(int direction, int images, int drawer_low, const uint8_t *data, size_t size, int chunked,
                   uint64_t seed, tw_out *out)
{
    tw_escpos_config cfg;
    tw_escpos *d;
    uint64_t rng = seed;
    size_t pos = 0;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.direction = direction;
    cfg.images = images;
    cfg.drawer_open_level = drawer_low ? TW_ESCPOS_DRAWER_LOW : TW_ESCPOS_DRAWER_HIGH;
    cfg.codepage_index = codepage_index;
    cfg.codepages = codepages;
    cfg.n_codepages = N_CODEPAGES;
    cfg.charset_index = charset_index;
    cfg.charsets = charsets;
    cfg.n_charsets = N_CHARSETS;
    cfg.default_codepage = 0;
    cfg.default_charset = 0;
    cfg.kanji_single = kanji_single;
    cfg.kanji_double = kanji_double;
    d = tw_escpos_new(&cfg);
    if (!d)
        abort();
    tw_out_reset(out);
    while (pos < size) {
        size_t n = size - pos;
        /* from_device: requests noted at the same positions in both runs (every 16 bytes) */
        if (direction == TW_ESCPOS_FROM_DEVICE) {
            size_t to_boundary = 16 - pos % 16;
            if (pos % 16 == 0) {
                uint64_t q = (seed ^ (uint64_t)pos) | 1;
                unsigned k;
                q = next_random(&q);
                k = (unsigned)(q % (sizeof(request_kinds) / sizeof(request_kinds[0])));
                tw_escpos_note_request(d, tw_escpos_request_kind(request_kinds[k]), (int64_t)((q >> 8) % 80));
            }
            if (n > to_boundary)
                n = to_boundary;
        }
        if (chunked)
            n = chunk_size(&rng, n);
        rc = tw_escpos_feed(d, data + pos, n, out);
        if (rc != TW_OK)
            abort();
        pos += n;
    }
    rc = tw_escpos_close(d, out);
    if (rc != TW_OK || tw_escpos_feed(d, data, size, out) != TW_ERR_CLOSED)
        abort();
    tw_escpos_free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_out whole, chunked;
    int direction, images, drawer_low;
    uint64_t seed;

    if (size < 1)
        return 0;
    build_tables();
    direction = data[0] & 1 ? TW_ESCPOS_FROM_DEVICE : TW_ESCPOS_TO_DEVICE;
    images = (data[0] >> 1) & 1;
    drawer_low = (data[0] >> 2) & 1;
    seed = seed_of(data, size);
    decode(direction, images, drawer_low, data + 1, size - 1, 0, seed, &whole);
    decode(direction, images, drawer_low, data + 1, size - 1, 1, seed, &chunked);
    fuzz_compare(&whole, &chunked, UINT32_MAX, TW_MAX_ERROR_RAW);
    return 0;
}
