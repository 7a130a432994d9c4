/* libFuzzer entry for the ESC/POS decoder.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_escpos.c native/escpos.c \
 *         native/tw_*.c -o native/fuzz/fuzz_escpos
 *   native/fuzz/fuzz_escpos native/fuzz/corpus/escpos
 *
 * Input: byte 0 picks the mode (bit 0: from_device, bit 1: images); the rest is the stream. It is decoded twice,
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
#include "tw_errors.h"
#include "tw_msgpack.h"

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

/* xorshift64*, seeded from the input: the chunking depends on the input only */
static uint64_t next_random(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * UINT64_C(2685821657736338717);
}

static uint64_t seed_of(const uint8_t *data, size_t size)
{
    uint64_t h = UINT64_C(1469598103934665603);
    size_t i;
    for (i = 0; i < size; i++)
        h = (h ^ data[i]) * UINT64_C(1099511628211);
    return h ? h : 1;
}

static const char *const request_kinds[] = {"printer", "offline", "error", "paper", "drawer", "paper_sensor",
                                            "ink", "id", "asb", "counter", "made_up"};

/* Feeds data in chunks (chunked != 0) or whole; returns the decoder's output in out. */
static void decode(int direction, int images, const uint8_t *data, size_t size, int chunked, uint64_t seed,
                   tw_out *out)
{
    tw_escpos_config cfg;
    tw_escpos *d;
    uint64_t rng = seed;
    size_t pos = 0;
    int rc;

    memset(&cfg, 0, sizeof(cfg));
    cfg.direction = direction;
    cfg.images = images;
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
        uint64_t r = next_random(&rng);
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
        if (chunked) {
            size_t want = (r >> 32) % 8 == 0 ? (size_t)((r >> 40) % 4096) + 1 : (size_t)((r >> 40) % 9) + 1;
            if (n > want)
                n = want;
        }
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

/* ---- a minimal msgpack reader, to check the output's shape */

struct reader {
    const uint8_t *p, *end;
};

static uint64_t read_be(struct reader *r, unsigned width)
{
    uint64_t v = 0;
    if ((size_t)(r->end - r->p) < width)
        abort();
    while (width--)
        v = v << 8 | *r->p++;
    return v;
}

/* Skips one object; returns its type byte class: 's' str, 'm' map (with *count), other 'x'. */
static int skip_object(struct reader *r, uint32_t *count, int depth)
{
    uint8_t tag;
    uint64_t n, i;
    if (r->p >= r->end || depth > 8)
        abort();
    tag = *r->p++;
    if (tag <= 0x7f || tag >= 0xe0 || tag == 0xc2 || tag == 0xc3 || tag == 0xc0)
        return 'x';
    if ((tag & 0xe0) == 0xa0 || tag == 0xd9 || tag == 0xda || tag == 0xdb || tag == 0xc4 || tag == 0xc5 ||
        tag == 0xc6) {
        int is_str = (tag & 0xe0) == 0xa0 || (tag >= 0xd9 && tag <= 0xdb);
        n = (tag & 0xe0) == 0xa0 ? (uint64_t)(tag & 0x1f)
            : read_be(r, tag == 0xd9 || tag == 0xc4 ? 1 : tag == 0xda || tag == 0xc5 ? 2 : 4);
        if ((uint64_t)(r->end - r->p) < n)
            abort();
        r->p += n;
        return is_str ? 's' : 'x';
    }
    if (tag == 0xcc || tag == 0xd0)
        return read_be(r, 1), 'x';
    if (tag == 0xcd || tag == 0xd1)
        return read_be(r, 2), 'x';
    if (tag == 0xce || tag == 0xd2)
        return read_be(r, 4), 'x';
    if (tag == 0xcf || tag == 0xd3)
        return read_be(r, 8), 'x';
    if ((tag & 0xf0) == 0x90 || tag == 0xdc || tag == 0xdd) {
        n = (tag & 0xf0) == 0x90 ? (uint64_t)(tag & 0x0f) : read_be(r, tag == 0xdc ? 2 : 4);
        for (i = 0; i < n; i++)
            skip_object(r, NULL, depth + 1);
        return 'x';
    }
    if ((tag & 0xf0) == 0x80 || tag == 0xde || tag == 0xdf) {
        n = (tag & 0xf0) == 0x80 ? (uint64_t)(tag & 0x0f) : read_be(r, tag == 0xde ? 2 : 4);
        if (count)
            *count = (uint32_t)n;
        for (i = 0; i < 2 * n; i++)
            skip_object(r, NULL, depth + 1);
        return 'm';
    }
    abort(); /* a tag the writer never produces */
}

static void check_events(const tw_out *out)
{
    struct reader r;
    if (out->len == 0)
        return;
    r.p = out->data;
    r.end = out->data + out->len;
    while (r.p < r.end) {
        uint32_t n = 0;
        if (*r.p != 0x82) /* {"type": ..., "data": ...} */
            abort();
        r.p++;
        if (skip_object(&r, NULL, 1) != 's' || skip_object(&r, NULL, 1) != 's')
            abort();
        if (skip_object(&r, NULL, 1) != 's' || skip_object(&r, &n, 1) != 'm')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_out whole, chunked;
    int direction, images;
    uint64_t seed;

    if (size < 1)
        return 0;
    build_tables();
    direction = data[0] & 1 ? TW_ESCPOS_FROM_DEVICE : TW_ESCPOS_TO_DEVICE;
    images = (data[0] >> 1) & 1;
    seed = seed_of(data, size);
    decode(direction, images, data + 1, size - 1, 0, seed, &whole);
    decode(direction, images, data + 1, size - 1, 1, seed, &chunked);
    if (whole.len != chunked.len || (whole.len && memcmp(whole.data, chunked.data, whole.len) != 0)) {
        fprintf(stderr, "chunked output differs from whole output\n");
        abort();
    }
    check_events(&whole);
    /* keep memory flat across inputs */
    if (whole.cap > (1u << 22))
        tw_out_trim(&whole, 1u << 16);
    if (chunked.cap > (1u << 22))
        tw_out_trim(&chunked, 1u << 16);
    return 0;
}
