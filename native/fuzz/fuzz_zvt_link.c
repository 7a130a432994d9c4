/* libFuzzer entry for the ZVT link-layer decoder.
 *
 *   clang -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -Inative native/fuzz/fuzz_zvt_link.c \
 *         native/zvt_link.c native/tw_*.c -o native/fuzz/fuzz_zvt_link
 *   native/fuzz/fuzz_zvt_link native/fuzz/corpus/zvt_link
 *
 * Input: bit 0 of byte 0 picks the framing (0 serial, 1 tcp); the rest is the stream. It is decoded twice, fed
 * whole and fed in chunks whose sizes come from a generator seeded with the input, and the two outputs must be
 * identical (chunk invariance). The output must be a well-formed sequence of {"type": str, "data": map}, and
 * no protocol.error's raw may be longer than an APDU header (5 bytes): data bytes never reach an event.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_errors.h"
#include "tw_msgpack.h"
#include "zvt_link.h"

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

static void decode(int framing, const uint8_t *data, size_t size, int chunked, uint64_t seed, tw_out *out)
{
    tw_zvt_link *d = tw_zvt_link_new(framing);
    uint64_t rng = seed;
    size_t pos = 0;
    int rc;

    if (!d)
        abort();
    tw_out_reset(out);
    while (pos < size) {
        size_t n = size - pos;
        if (chunked) {
            uint64_t r = next_random(&rng);
            size_t want = (r >> 32) % 8 == 0 ? (size_t)((r >> 40) % 4096) + 1 : (size_t)((r >> 40) % 9) + 1;
            if (n > want)
                n = want;
        }
        rc = tw_zvt_link_feed(d, data + pos, n, out);
        if (rc != TW_OK)
            abort();
        pos += n;
    }
    /* an empty feed is a no-op */
    if (tw_zvt_link_feed(d, data, 0, out) != TW_OK)
        abort();
    rc = tw_zvt_link_close(d, out);
    if (rc != TW_OK || tw_zvt_link_feed(d, data, size, out) != TW_ERR_CLOSED ||
        tw_zvt_link_close(d, out) != TW_ERR_CLOSED)
        abort();
    tw_zvt_link_free(d);
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

/* Skips one object; returns 's' str, 'b' bin (its length in *count), 'm' map (pairs in *count), other 'x'. */
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
        if (count)
            *count = (uint32_t)n;
        return is_str ? 's' : 'b';
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
        for (i = 0; i < n; i++) {
            uint32_t len = 0;
            const uint8_t *key = r->p;
            int kind = skip_object(r, NULL, depth + 1);
            int is_raw = kind == 's' && r->p - key == 4 && memcmp(key + 1, "raw", 3) == 0;
            kind = skip_object(r, &len, depth + 1);
            if (is_raw && (kind != 'b' || len > 5)) /* at most an APDU header: never data */
                abort();
        }
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
        if (skip_object(&r, NULL, 1) != 's' || skip_object(&r, &n, 1) != 'm' || n > 4)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_out whole, chunked;
    int framing;
    uint64_t seed;

    if (size < 1)
        return 0;
    framing = data[0] & 1 ? TW_ZVT_TCP : TW_ZVT_SERIAL;
    seed = seed_of(data, size);
    decode(framing, data + 1, size - 1, 0, seed, &whole);
    decode(framing, data + 1, size - 1, 1, seed, &chunked);
    if (whole.len != chunked.len || (whole.len && memcmp(whole.data, chunked.data, whole.len) != 0)) {
        fprintf(stderr, "chunked output differs from whole output\n");
        abort();
    }
    check_events(&whole);
    if (whole.cap > (1u << 22))
        tw_out_trim(&whole, 1u << 16);
    if (chunked.cap > (1u << 22))
        tw_out_trim(&chunked, 1u << 16);
    return 0;
}
