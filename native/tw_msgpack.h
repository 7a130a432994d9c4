/* A msgpack writer into a growable output buffer.
 *
 * Encodes exactly as msgpack-python's packb(obj, use_bin_type=True): the smallest form of every int, str8 for
 * 32..255-byte strings, bin8/16/32 for bytes. Multi-byte numbers are written big-endian with shifts, so the
 * writer makes no assumption about the host's byte order or alignment.
 *
 * Two layers:
 * - tw_mp_*(tw_out *, ...) check for room and grow the buffer with realloc. When growing fails they set `oom`
 *   and drop that write and every later one, so a caller checks `oom` once after a batch of writes.
 * - tw_mpw_*(uint8_t *p, ...) write at p without any check and return the position after what they wrote. A hot
 *   path reserves room for a whole record once (tw_out_room), writes it with these, then commits the length
 *   (tw_out_commit). TW_MPW_MAX_HEAD bounds what any of them writes besides a string's or bin's payload.
 *
 * The buffer belongs to whoever called tw_out_init().
 */
#ifndef TW_MSGPACK_H
#define TW_MSGPACK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The same definition is repeated, under the same guard, in tw_ffi.h for cffi (which checks its layout). */
#ifndef TW_OUT_DEFINED
#define TW_OUT_DEFINED
typedef struct tw_out {
    uint8_t *data;
    size_t len;
    size_t cap;
    int oom;
} tw_out;
#endif

void tw_out_init(tw_out *o);
void tw_out_free(tw_out *o);
/* Forget the contents (len = 0, oom = 0); keeps the allocation. */
void tw_out_reset(tw_out *o);
/* Reset, and give memory back when the allocation is larger than max_cap. */
void tw_out_trim(tw_out *o, size_t max_cap);

/* Slow path of tw_out_room: grow so that n more bytes fit. NULL (and oom set) when that fails. */
uint8_t *tw_out_grow(tw_out *o, size_t n);

/* The unchecked writers are tiny and sit on hot paths: ask for inlining where the compiler has a way to. */
#if defined(__GNUC__)
#define TW_INLINE static inline __attribute__((always_inline))
#else
#define TW_INLINE static inline
#endif

/* Where the next n bytes go (NULL when out of memory); the caller writes them, then tw_out_commit(). */
TW_INLINE uint8_t *tw_out_room(tw_out *o, size_t n)
{
    if (!o->oom && o->cap - o->len >= n)
        return o->data + o->len;
    return tw_out_grow(o, n); /* after one failure every later write fails too: no event goes missing mid-stream */
}

/* Ends a write that started at tw_out_room(): end is the position after the last byte written. */
TW_INLINE void tw_out_commit(tw_out *o, const uint8_t *end)
{
    o->len = (size_t)(end - o->data);
}

/* ---- unchecked writers */

#define TW_MPW_MAX_HEAD 9

/* tag, then the low `width` bytes of v, big-endian */
TW_INLINE uint8_t *tw_mpw_tagged(uint8_t *p, uint8_t tag, uint64_t v, unsigned width)
{
    unsigned i;
    *p++ = tag;
    for (i = width; i-- > 0;)
        *p++ = (uint8_t)(v >> (8 * i));
    return p;
}

TW_INLINE uint8_t *tw_mpw_nil(uint8_t *p)
{
    *p = 0xc0;
    return p + 1;
}

TW_INLINE uint8_t *tw_mpw_bool(uint8_t *p, int v)
{
    *p = v ? 0xc3 : 0xc2;
    return p + 1;
}

TW_INLINE uint8_t *tw_mpw_uint(uint8_t *p, uint64_t v)
{
    if (v <= 0x7f) {
        *p = (uint8_t)v;
        return p + 1;
    }
    if (v <= 0xff)
        return tw_mpw_tagged(p, 0xcc, v, 1);
    if (v <= 0xffff)
        return tw_mpw_tagged(p, 0xcd, v, 2);
    if (v <= 0xffffffffu)
        return tw_mpw_tagged(p, 0xce, v, 4);
    return tw_mpw_tagged(p, 0xcf, v, 8);
}

/* Any int: non-negative values take the unsigned forms, as msgpack-python does. */
TW_INLINE uint8_t *tw_mpw_int(uint8_t *p, int64_t v)
{
    /* two's complement bits of v, without converting a negative value to unsigned implicitly */
    uint64_t bits = v < 0 ? ~(uint64_t)(-(v + 1)) : (uint64_t)v;
    if (v >= 0)
        return tw_mpw_uint(p, bits);
    if (v >= -32) {
        *p = (uint8_t)(0xe0 | (bits & 0x1f));
        return p + 1;
    }
    if (v >= -128)
        return tw_mpw_tagged(p, 0xd0, bits, 1);
    if (v >= -32768)
        return tw_mpw_tagged(p, 0xd1, bits, 2);
    if (v >= -2147483647 - 1)
        return tw_mpw_tagged(p, 0xd2, bits, 4);
    return tw_mpw_tagged(p, 0xd3, bits, 8);
}

TW_INLINE uint8_t *tw_mpw_map(uint8_t *p, uint32_t n)
{
    if (n <= 15) {
        *p = (uint8_t)(0x80 | n);
        return p + 1;
    }
    return n <= 0xffff ? tw_mpw_tagged(p, 0xde, n, 2) : tw_mpw_tagged(p, 0xdf, n, 4);
}

TW_INLINE uint8_t *tw_mpw_array(uint8_t *p, uint32_t n)
{
    if (n <= 15) {
        *p = (uint8_t)(0x90 | n);
        return p + 1;
    }
    return n <= 0xffff ? tw_mpw_tagged(p, 0xdc, n, 2) : tw_mpw_tagged(p, 0xdd, n, 4);
}

TW_INLINE uint8_t *tw_mpw_str_header(uint8_t *p, size_t len)
{
    if (len <= 31) {
        *p = (uint8_t)(0xa0 | len);
        return p + 1;
    }
    if (len <= 0xff)
        return tw_mpw_tagged(p, 0xd9, len, 1);
    return len <= 0xffff ? tw_mpw_tagged(p, 0xda, len, 2) : tw_mpw_tagged(p, 0xdb, len, 4);
}

TW_INLINE uint8_t *tw_mpw_str(uint8_t *p, const void *s, size_t len)
{
    p = tw_mpw_str_header(p, len);
    if (len)
        memcpy(p, s, len);
    return p + len;
}

TW_INLINE uint8_t *tw_mpw_bin_header(uint8_t *p, size_t len)
{
    if (len <= 0xff)
        return tw_mpw_tagged(p, 0xc4, len, 1);
    return len <= 0xffff ? tw_mpw_tagged(p, 0xc5, len, 2) : tw_mpw_tagged(p, 0xc6, len, 4);
}

TW_INLINE uint8_t *tw_mpw_bin(uint8_t *p, const void *b, size_t len)
{
    p = tw_mpw_bin_header(p, len);
    if (len)
        memcpy(p, b, len);
    return p + len;
}

/* A string literal as a msgpack str, its length taken at compile time. */
#define TW_MPW_LIT(p, lit) tw_mpw_str((p), (lit), sizeof(lit) - 1)

/* ---- checked writers */

void tw_out_bytes(tw_out *o, const void *src, size_t n);
void tw_mp_nil(tw_out *o);
void tw_mp_bool(tw_out *o, int v);
void tw_mp_uint(tw_out *o, uint64_t v);
void tw_mp_int(tw_out *o, int64_t v);
void tw_mp_map(tw_out *o, uint32_t n);
void tw_mp_array(tw_out *o, uint32_t n);
/* A str header for `len` bytes of UTF-8 that the caller appends itself. */
void tw_mp_str_header(tw_out *o, size_t len);
void tw_mp_str(tw_out *o, const char *s, size_t len);
void tw_mp_bin_header(tw_out *o, size_t len);
void tw_mp_bin(tw_out *o, const uint8_t *b, size_t len);


#endif
