/* Shared by the libFuzzer harnesses: a chunk-size generator seeded from the input, one driver that decodes an
 * input whole and in chunks through any decoder, and a checker of the output's shape (a sequence of
 * {"type": str, "data": map} whose protocol.error raw stays within a per-protocol limit). */
#ifndef TW_FUZZ_COMMON_H
#define TW_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tw_errors.h"
#include "tw_msgpack.h"

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

/* The next chunk's size, at most `left`: mostly 1-9 bytes (splits inside every header), one time in eight up to
 * 4 KiB. */
static inline size_t chunk_size(uint64_t *rng, size_t left)
{
    uint64_t r = next_random(rng);
    size_t want = (r >> 32) % 8 == 0 ? (size_t)((r >> 40) % 4096) + 1 : (size_t)((r >> 40) % 9) + 1;
    return left < want ? left : want;
}

/* ---- one driver for every decoder: each harness wraps its decoder's functions in these signatures */

typedef struct fuzz_target {
    void *(*make)(const void *cfg); /* NULL only on a bug: the harness passes valid configurations */
    int (*feed)(void *d, const uint8_t *data, size_t len, tw_out *out);
    int (*close)(void *d, tw_out *out);
    void (*destroy)(void *d);
} fuzz_target;

/* A fresh decoder fed data[0..size) whole or in seeded chunks, its output left in out. Checks the API contract
 * too: every feed succeeds, an empty feed is a no-op, and after close() both feed and close say TW_ERR_CLOSED. */
static inline void fuzz_decode(const fuzz_target *t, const void *cfg, const uint8_t *data, size_t size,
                               int chunked, uint64_t seed, tw_out *out)
{
    void *d = t->make(cfg);
    uint64_t rng = seed;
    size_t pos = 0;

    if (!d)
        abort();
    tw_out_reset(out);
    while (pos < size) {
        size_t n = chunked ? chunk_size(&rng, size - pos) : size - pos;
        if (t->feed(d, data + pos, n, out) != TW_OK)
            abort();
        pos += n;
    }
    if (t->feed(d, data, 0, out) != TW_OK || t->close(d, out) != TW_OK ||
        t->feed(d, data, size, out) != TW_ERR_CLOSED || t->close(d, out) != TW_ERR_CLOSED)
        abort();
    t->destroy(d);
}

static void check_events(const tw_out *out, uint32_t max_keys, uint32_t max_raw);

/* The two outputs of one input must be identical (chunk invariance) and well-formed; memory stays flat across
 * inputs. */
static inline void fuzz_compare(tw_out *whole, tw_out *chunked, uint32_t max_keys, uint32_t max_raw)
{
    if (whole->len != chunked->len || (whole->len && memcmp(whole->data, chunked->data, whole->len) != 0)) {
        fprintf(stderr, "chunked output differs from whole output\n");
        abort();
    }
    check_events(whole, max_keys, max_raw);
    if (whole->cap > (1u << 22))
        tw_out_trim(whole, 1u << 16);
    if (chunked->cap > (1u << 22))
        tw_out_trim(chunked, 1u << 16);
}

/* Decodes data whole and chunked through t and compares (the usual harness body). */
static inline void fuzz_whole_vs_chunked(const fuzz_target *t, const void *cfg, const uint8_t *data, size_t size,
                                         uint64_t seed, uint32_t max_keys, uint32_t max_raw)
{
    static tw_out whole, chunked;
    fuzz_decode(t, cfg, data, size, 0, seed, &whole);
    fuzz_decode(t, cfg, data, size, 1, seed, &chunked);
    fuzz_compare(&whole, &chunked, max_keys, max_raw);
}

/* ---- a minimal msgpack reader, to check the output's shape */

struct reader {
    const uint8_t *p, *end;
    uint32_t max_raw; /* longest raw a protocol.error may carry */
};

#define FUZZ_MAX_DEPTH 48 /* event, data, and nested containers (ZVT TLV lists nest 2 levels per TLV level) */

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
    if (r->p >= r->end || depth > FUZZ_MAX_DEPTH)
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
            if (is_raw && depth == 1 && (kind != 'b' || len > r->max_raw))
                abort();
        }
        return 'm';
    }
    abort(); /* a tag the writer never produces */
}

/* Every event is {"type": str, "data": map of at most max_keys pairs}; every protocol.error's raw (a key "raw"
 * directly in an event's data) is bin of at most max_raw bytes. */
static void check_events(const tw_out *out, uint32_t max_keys, uint32_t max_raw)
{
    struct reader r;
    if (out->len == 0)
        return;
    r.p = out->data;
    r.end = out->data + out->len;
    r.max_raw = max_raw;
    while (r.p < r.end) {
        uint32_t n = 0;
        if (*r.p != 0x82) /* {"type": ..., "data": ...} */
            abort();
        r.p++;
        if (skip_object(&r, NULL, 0) != 's' || skip_object(&r, NULL, 0) != 's')
            abort();
        if (skip_object(&r, NULL, 0) != 's' || skip_object(&r, &n, 0) != 'm' || n > max_keys)
            abort();
    }
}

#endif
