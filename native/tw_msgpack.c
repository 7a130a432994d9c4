#include "tw_msgpack.h"

#include <stdlib.h>
#include <string.h>

#define TW_OUT_MIN_CAP 4096

void tw_out_init(tw_out *o)
{
    o->data = NULL;
    o->len = 0;
    o->cap = 0;
    o->oom = 0;
}

void tw_out_free(tw_out *o)
{
    free(o->data);
    tw_out_init(o);
}

void tw_out_reset(tw_out *o)
{
    o->len = 0;
    o->oom = 0;
}

void tw_out_trim(tw_out *o, size_t max_cap)
{
    tw_out_reset(o);
    if (o->cap > max_cap) {
        /* A failed shrink keeps the larger block, which is still valid. */
        uint8_t *p = realloc(o->data, max_cap ? max_cap : 1);
        if (p) {
            o->data = p;
            o->cap = max_cap;
        }
    }
}

uint8_t *tw_out_grow(tw_out *o, size_t n)
{
    size_t need, cap;
    uint8_t *p;

    if (o->oom || n > SIZE_MAX - o->len) {
        o->oom = 1;
        return NULL;
    }
    need = o->len + n;
    cap = o->cap < TW_OUT_MIN_CAP ? TW_OUT_MIN_CAP : o->cap;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    p = realloc(o->data, cap);
    if (!p) {
        o->oom = 1;
        return NULL;
    }
    o->data = p;
    o->cap = cap;
    return p + o->len;
}

void tw_out_bytes(tw_out *o, const void *src, size_t n)
{
    uint8_t *p;
    if (n == 0)
        return;
    p = tw_out_room(o, n);
    if (!p)
        return;
    memcpy(p, src, n);
    o->len += n;
}

/* Reserves `bound` bytes, runs the unchecked writer expression with `p` pointing there, commits. */
#define CHECKED(o, bound, write)                                                                               \
    do {                                                                                                       \
        uint8_t *p = tw_out_room((o), (bound));                                                                \
        if (p)                                                                                                 \
            tw_out_commit((o), (write));                                                                       \
    } while (0)

void tw_mp_nil(tw_out *o)
{
    CHECKED(o, 1, tw_mpw_nil(p));
}

void tw_mp_bool(tw_out *o, int v)
{
    CHECKED(o, 1, tw_mpw_bool(p, v));
}

void tw_mp_uint(tw_out *o, uint64_t v)
{
    CHECKED(o, TW_MPW_MAX_HEAD, tw_mpw_uint(p, v));
}

void tw_mp_int(tw_out *o, int64_t v)
{
    CHECKED(o, TW_MPW_MAX_HEAD, tw_mpw_int(p, v));
}

void tw_mp_map(tw_out *o, uint32_t n)
{
    CHECKED(o, TW_MPW_MAX_HEAD, tw_mpw_map(p, n));
}

void tw_mp_array(tw_out *o, uint32_t n)
{
    CHECKED(o, TW_MPW_MAX_HEAD, tw_mpw_array(p, n));
}

void tw_mp_str_header(tw_out *o, size_t len)
{
    CHECKED(o, TW_MPW_MAX_HEAD, tw_mpw_str_header(p, len));
}

void tw_mp_str(tw_out *o, const char *s, size_t len)
{
    if (len > SIZE_MAX - TW_MPW_MAX_HEAD) {
        o->oom = 1;
        return;
    }
    CHECKED(o, TW_MPW_MAX_HEAD + len, tw_mpw_str(p, s, len));
}

void tw_mp_bin_header(tw_out *o, size_t len)
{
    CHECKED(o, TW_MPW_MAX_HEAD, tw_mpw_bin_header(p, len));
}

void tw_mp_bin(tw_out *o, const uint8_t *b, size_t len)
{
    if (len > SIZE_MAX - TW_MPW_MAX_HEAD) {
        o->oom = 1;
        return;
    }
    CHECKED(o, TW_MPW_MAX_HEAD + len, tw_mpw_bin(p, b, len));
}
