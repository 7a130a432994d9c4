/* Generic STX/ETX ECR link decoder (docs/protocols/ecr.md). See ecr.h for the streaming model. */
#include "ecr.h"

#include <stdlib.h>
#include <string.h>

#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_crc.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"

#define HEAD TW_HEAD /* tw_event.h */
#define KEY TW_KEY

/* byte classes in ground (section 3) */
enum { C_OTHER = 0, C_STX, C_ACK, C_NAK, C_ENQ, C_EOT };

enum state {
    S_GROUND, /* between frames */
    S_FRAME,  /* after STX: payload bytes */
    S_CHECK   /* after ETX: the checksum bytes */
};

struct tw_ecr {
    tw_ecr_config cfg;
    tw_stream io; /* offset, sticky status, and this call's output and input (tw_event.h) */
    uint8_t cls[256];
    unsigned width; /* checksum bytes after ETX: 0, 1 or 2 */

    enum state state;
    int garbage;        /* ground: inside a run skipped silently (its first byte was reported) */
    uint64_t frame_off; /* the frame's STX */
    uint8_t *payload;   /* max_frame bytes, allocated once */
    uint32_t len;
    uint32_t expected;  /* S_CHECK: the checksum computed over the frame */
    uint32_t got;
    unsigned ngot;

    tw_out scratch;     /* the semantic event, written before the payload is scrubbed in place */
    uint32_t starts[TW_ECR_MAX_FIELD_INDEX + 2]; /* field boundaries for a layout (MATCH_CODE) */
    uint32_t fsep[TW_ECR_MAX_FIELD_INDEX + 1];   /* field i's first entry in seps (its US bytes follow there) */
    uint32_t *seps;     /* separator positions of the current payload (max_frame entries, with fs) */
    size_t nseps;
    /* the withheld items the current frame holds, and their payload spans */
    const tw_ecr_item *withheld[TW_ECR_MAX_ITEMS];
    uint32_t hidden_from[TW_ECR_MAX_ITEMS], hidden_to[TW_ECR_MAX_ITEMS];
    unsigned nwithheld;
};

/* ------------------------------------------------------------------------------------------ config (§2) */

static int is_byte(int v) { return v >= 0 && v <= 255; }
static int is_opt_byte(int v) { return v == TW_ECR_NONE || is_byte(v); }

static int check_items(const tw_ecr_config *c, const tw_ecr_message *m)
{
    uint32_t i;
    if (m->n_items > TW_ECR_MAX_ITEMS || (m->n_items && !m->items))
        return 0;
    for (i = 0; i < m->n_items; i++) {
        const tw_ecr_item *it = &m->items[i];
        if (!it->key || it->key_len == 0 || it->key_len > TW_ECR_MAX_NAME)
            return 0;
        if (it->type < TW_ECR_ITEM_CONST || it->type > TW_ECR_ITEM_WITHHELD)
            return 0;
        if (it->type == TW_ECR_ITEM_CONST || it->type == TW_ECR_ITEM_APPROVED) {
            if (!it->value || it->value_len > TW_ECR_MAX_VALUE)
                return 0;
            if (it->type == TW_ECR_ITEM_APPROVED && (it->value_len == 0 || it->value[it->value_len - 1] != 0))
                return 0;
        }
        if (it->type == TW_ECR_ITEM_CONST)
            continue;
        if (c->match == TW_ECR_MATCH_CODE &&
            (it->field < 0 || it->field > TW_ECR_MAX_FIELD_INDEX || it->sub < -1 || it->sub > TW_ECR_MAX_FIELD_INDEX))
            return 0;
        if (c->match == TW_ECR_MATCH_LENGTH && !(it->start < it->end && it->end <= m->length))
            return 0;
    }
    return 1;
}

static int check_message(const tw_ecr_config *c, const tw_ecr_message *m)
{
    if (!m->event || m->event_len == 0 || m->event_len > TW_ECR_MAX_NAME)
        return 0;
    if (m->where_at < -1 || (m->where_at >= 0 && ((!m->where && m->where_len) || m->where_len > TW_ECR_MAX_NAME)))
        return 0;
    if (c->match == TW_ECR_MATCH_CODE) {
        if (!m->code || m->code_len > TW_ECR_MAX_NAME || m->code_field < 0 || m->code_field > TW_ECR_MAX_FIELD_INDEX)
            return 0;
        if (m->where_at > TW_ECR_MAX_FIELD_INDEX)
            return 0;
    } else if (m->where_at >= 0 && (uint64_t)m->where_at + m->where_len > m->length) {
        return 0;
    }
    return check_items(c, m);
}

int tw_ecr_check_config(const tw_ecr_config *c)
{
    int links[6], n = 0, i, j;
    uint32_t k;
    if (!c || !is_byte(c->stx) || !is_byte(c->etx) || c->stx == c->etx)
        return TW_ERR_BAD_CONFIG;
    if (c->checksum < TW_ECR_CK_NONE || c->checksum > TW_ECR_CK_CRC16_XMODEM)
        return TW_ERR_BAD_CONFIG;
    if (c->seed > (c->checksum == TW_ECR_CK_NONE ? 0u : c->checksum <= TW_ECR_CK_SUM ? 0xFFu : 0xFFFFu))
        return TW_ERR_BAD_CONFIG;
    links[n++] = c->stx;
    links[n++] = c->etx;
    if (!is_opt_byte(c->ack) || !is_opt_byte(c->nak) || !is_opt_byte(c->enq) || !is_opt_byte(c->eot))
        return TW_ERR_BAD_CONFIG;
    if (c->ack != TW_ECR_NONE)
        links[n++] = c->ack;
    if (c->nak != TW_ECR_NONE)
        links[n++] = c->nak;
    if (c->enq != TW_ECR_NONE)
        links[n++] = c->enq;
    if (c->eot != TW_ECR_NONE)
        links[n++] = c->eot;
    for (i = 0; i < n; i++)
        for (j = i + 1; j < n; j++)
            if (links[i] == links[j])
                return TW_ERR_BAD_CONFIG;
    if (!is_opt_byte(c->fs) || !is_opt_byte(c->us) || (c->us != TW_ECR_NONE && c->fs == TW_ECR_NONE))
        return TW_ERR_BAD_CONFIG;
    for (i = 0; i < 2; i++) {
        int s = i ? c->us : c->fs;
        if (s == TW_ECR_NONE)
            continue;
        if (s == c->stx || s == c->etx || (s >= '0' && s <= '9') || s == ' ' || s == '-')
            return TW_ERR_BAD_CONFIG;
    }
    if (c->fs != TW_ECR_NONE && c->fs == c->us)
        return TW_ERR_BAD_CONFIG;
    if (c->max_frame < 1 || c->max_frame > TW_MAX_ECR_FRAME)
        return TW_ERR_BAD_CONFIG;
    if (!c->dialect || c->dialect_len == 0 || c->dialect_len > TW_ECR_MAX_NAME)
        return TW_ERR_BAD_CONFIG;
    if (c->match < TW_ECR_MATCH_NONE || c->match > TW_ECR_MATCH_LENGTH)
        return TW_ERR_BAD_CONFIG;
    if (c->match == TW_ECR_MATCH_NONE)
        return c->n_messages == 0 ? TW_OK : TW_ERR_BAD_CONFIG;
    if (c->match == TW_ECR_MATCH_CODE && c->fs == TW_ECR_NONE)
        return TW_ERR_BAD_CONFIG;
    if (c->n_messages > TW_ECR_MAX_MESSAGES || (c->n_messages && !c->messages))
        return TW_ERR_BAD_CONFIG;
    for (k = 0; k < c->n_messages; k++)
        if (!check_message(c, &c->messages[k]))
            return TW_ERR_BAD_CONFIG;
    return TW_OK;
}

/* ----------------------------------------------------------------------------------------- checksums */

/* XOR of p[0..n), eight bytes at a time */
static uint8_t xor_fast(uint8_t v, const uint8_t *p, size_t n)
{
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        acc ^= w;
    }
    acc ^= acc >> 32;
    acc ^= acc >> 16;
    acc ^= acc >> 8;
    v ^= (uint8_t)acc;
    for (; i < n; i++)
        v ^= p[i];
    return v;
}

static uint32_t fold(const tw_ecr *d, uint32_t v, const uint8_t *p, size_t n)
{
    switch (d->cfg.checksum) {
    case TW_ECR_CK_XOR:
        return xor_fast((uint8_t)v, p, n);
    case TW_ECR_CK_SUM:
        return tw_sum8((uint8_t)v, p, n);
    case TW_ECR_CK_CRC16_KERMIT:
        return tw_crc16_kermit((uint16_t)v, p, n);
    case TW_ECR_CK_CRC16_XMODEM:
        return tw_crc16_xmodem((uint16_t)v, p, n);
    default:
        return 0;
    }
}

static uint32_t frame_checksum(const tw_ecr *d)
{
    uint32_t v = d->cfg.seed;
    uint8_t b;
    if (d->cfg.include_stx) {
        b = (uint8_t)d->cfg.stx;
        v = fold(d, v, &b, 1);
    }
    v = fold(d, v, d->payload, d->len);
    if (d->cfg.include_etx) {
        b = (uint8_t)d->cfg.etx;
        v = fold(d, v, &b, 1);
    }
    return v;
}

/* --------------------------------------------------------------------------------------- msgpack out */

static uint64_t offset_of(const tw_ecr *d, const uint8_t *p)
{
    return d->io.in_base + (uint64_t)(p - d->io.in_start);
}

#define EVENT_ROOM 128

static void emit_empty(tw_ecr *d, const char *type, size_t type_len)
{
    uint8_t *p = tw_out_room(d->io.out, EVENT_ROOM);
    if (!p)
        return;
    p = tw_event_head(p, type, type_len, 0);
    tw_out_commit(d->io.out, p);
}

/* protocol.error whose raw is the STX byte (the only byte an ECR error quotes), or nothing */
static void emit_error(tw_ecr *d, int code, uint64_t off, int with_stx)
{
    uint8_t stx = (uint8_t)d->cfg.stx;
    tw_emit_error(d->io.out, code, off, &stx, with_stx ? 1 : 0);
}

static void emit_checksum_error(tw_ecr *d)
{
    uint8_t *p = tw_out_room(d->io.out, EVENT_ROOM);
    if (!p)
        return;
    p = HEAD(p, "link.checksum_error", 2);
    p = KEY(p, "expected");
    p = tw_mpw_uint(p, d->expected);
    p = KEY(p, "got");
    p = tw_mpw_uint(p, d->got);
    tw_out_commit(d->io.out, p);
}

#define HI_BITS UINT64_C(0x8080808080808080)

/* bytes >= 0x80 in s[0..n): each takes two bytes in UTF-8 */
static size_t count_high(const uint8_t *s, size_t n)
{
    size_t i = 0, hi = 0, k;
    uint64_t w;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        if (w & HI_BITS)
            for (k = 0; k < 8; k++)
                hi += s[i + k] >> 7;
    }
    for (; i < n; i++)
        hi += s[i] >> 7;
    return hi;
}

/* s[0..n) as latin-1 text: a msgpack str of its UTF-8 encoding (at most 5 + 2n bytes) */
static uint8_t *put_latin1(uint8_t *p, const uint8_t *s, size_t n)
{
    size_t hi = count_high(s, n), i;
    p = tw_mpw_str_header(p, n + hi);
    if (!hi) {
        if (n)
            memcpy(p, s, n);
        return p + n;
    }
    for (i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c < 0x80) {
            *p++ = c;
        } else {
            *p++ = (uint8_t)(0xC0 | (c >> 6));
            *p++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    return p;
}

/* the same, scrubbed (the source is not modified) */
static uint8_t *put_latin1_scrubbed(uint8_t *p, const uint8_t *s, size_t n)
{
    uint8_t *end = put_latin1(p, s, n);
    size_t len = n + count_high(s, n);
    tw_card_scrub(end - len, len);
    return end;
}

#define SEP_US UINT32_C(0x80000000) /* d->seps: the separator at this index is a US (else an FS) */

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SWAR_SEPARATORS 1
#define LO7 UINT64_C(0x7F7F7F7F7F7F7F7F)
/* the high bit of every byte of w that is zero (exact: no borrow between bytes) */
static uint64_t zero_bytes(uint64_t w)
{
    return ~(((w & LO7) + LO7) | w | LO7);
}
#endif

/* Scrubs the payload (payment.md section 2) like tw_card_scrub(d->payload, d->len), faster. A digit group
 * sequence holds only digits, spaces and hyphens, and the scrubber never looks past a byte that is none of them,
 * so scrubbing each maximal run of such bytes on its own gives the same result; only runs of 13 bytes or more can
 * hold a PAN-length sequence. On little-endian GCC/Clang builds the runs are found eight bytes at a time. */
static void scrub_payload(tw_ecr *d)
{
#ifdef SWAR_SEPARATORS
    const uint64_t ones = UINT64_C(0x0101010101010101), hi = ones * 0x80;
    uint8_t *s = d->payload;
    size_t n = d->len, i, run_start = 0, run = 0, k;
    for (i = 0; i + 8 <= n; i += 8) {
        uint64_t w, x, digit, cls;
        size_t lead;
        memcpy(&w, s + i, 8);
        x = w & LO7;
        digit = (x + ones * (0x80 - 0x30)) & ~(x + ones * (0x80 - 0x3A)) & ~w & hi;
        cls = digit | zero_bytes(w ^ (ones * 0x20)) | zero_bytes(w ^ (ones * 0x2D));
        if (cls == hi) {
            run += 8;
            continue;
        }
        lead = (size_t)__builtin_ctzll(~cls & hi) / 8; /* class bytes at the start of this word */
        if (run + lead >= TW_PAN_MIN_DIGITS)
            tw_card_scrub(s + run_start, run + lead);
        /* runs inside the word are shorter than 8: only the one touching its end can grow */
        k = cls ? (size_t)__builtin_clzll(~cls & hi) / 8 : 0; /* class bytes at the end of this word */
        run = k;
        run_start = i + 8 - k;
    }
    for (; i < n; i++) {
        uint8_t c = s[i];
        if ((c >= '0' && c <= '9') || c == ' ' || c == '-') {
            run++;
            continue;
        }
        if (run >= TW_PAN_MIN_DIGITS)
            tw_card_scrub(s + run_start, run);
        run = 0;
        run_start = i + 1;
    }
    if (run >= TW_PAN_MIN_DIGITS)
        tw_card_scrub(s + run_start, run);
#else
    tw_card_scrub(d->payload, d->len);
#endif
}

/* One pass over the payload: the positions of its separators, in order, into d->seps; returns how many. ECR
 * fields are a few bytes long, so this beats a memchr call per field; on little-endian GCC/Clang builds it tests
 * eight bytes at a time and walks the matches with ctz. */
static size_t find_separators(tw_ecr *d)
{
    const uint8_t *s = d->payload;
    const uint8_t fs = (uint8_t)d->cfg.fs;
    const int has_us = d->cfg.us != TW_ECR_NONE;
    const uint8_t us = has_us ? (uint8_t)d->cfg.us : fs;
    uint32_t *out = d->seps;
    size_t i = 0, n = d->len;
#ifdef SWAR_SEPARATORS
    const uint64_t fsx = UINT64_C(0x0101010101010101) * fs, usx = UINT64_C(0x0101010101010101) * us;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, mf, mu, m;
        memcpy(&w, s + i, 8);
        mf = zero_bytes(w ^ fsx);
        mu = has_us ? zero_bytes(w ^ usx) : 0;
        m = mf | mu;
        while (m) {
            unsigned bit = (unsigned)__builtin_ctzll(m);
            *out++ = (uint32_t)(i + bit / 8) | ((mu >> bit) & 1 ? SEP_US : 0);
            m &= m - 1;
        }
    }
#endif
    for (; i < n; i++) {
        uint8_t c = s[i];
        if (c == fs)
            *out++ = (uint32_t)i;
        else if (has_us && c == us)
            *out++ = (uint32_t)i | SEP_US;
    }
    return (size_t)(out - d->seps);
}

/* ecr.frame from the (already scrubbed) payload */
static void emit_frame(tw_ecr *d)
{
    const tw_ecr_config *c = &d->cfg;
    const uint8_t *s = d->payload;
    size_t n = d->len;
    uint8_t *p;
    /* envelope, keys, dialect; the payload bin; the fields: the array, each field (an array header and a str
     * header, 10 bytes) and each sub-field (a str header), and the text at most doubled by UTF-8 */
    size_t room = EVENT_ROOM + c->dialect_len + 5 + n + (size_t)d->nwithheld * (TW_ECR_MAX_NAME + 5);
    unsigned w;
    if (c->fs != TW_ECR_NONE)
        room += 5 + 10 * (n + 2) + 2 * n;
    p = tw_out_room(d->io.out, room);
    if (!p)
        return;
    p = HEAD(p, "ecr.frame", 2u + (c->fs != TW_ECR_NONE) + (d->nwithheld != 0));
    p = KEY(p, "dialect");
    p = tw_mpw_str(p, c->dialect, c->dialect_len);
    p = KEY(p, "payload");
    p = tw_mpw_bin(p, s, n);
    if (c->fs != TW_ECR_NONE) {
        size_t nseps = d->nseps, k = 0, nfields = 1, start = 0;
        int ascii = count_high(s, n) == 0;
        const uint32_t *seps = d->seps;
        for (k = 0; k < nseps; k++)
            nfields += !(seps[k] & SEP_US);
        p = KEY(p, "fields");
        p = tw_mpw_array(p, (uint32_t)nfields);
        k = 0;
        for (;;) {
            /* this field: separators k .. j - 1 are its US bytes; j (if < nseps) is the FS that ends it */
            size_t j = k, end;
            while (j < nseps && (seps[j] & SEP_US))
                j++;
            end = j < nseps ? seps[j] : n;
            if (j == k) {
                p = ascii ? tw_mpw_str(p, s + start, end - start) : put_latin1(p, s + start, end - start);
            } else {
                size_t from = start, m;
                p = tw_mpw_array(p, (uint32_t)(j - k + 1));
                for (m = k; m <= j; m++) {
                    size_t to = m < j ? (seps[m] & ~SEP_US) : end;
                    p = ascii ? tw_mpw_str(p, s + from, to - from) : put_latin1(p, s + from, to - from);
                    from = to + 1;
                }
            }
            if (j == nseps)
                break;
            start = end + 1;
            k = j + 1;
        }
    }
    if (d->nwithheld) {
        p = KEY(p, "withheld");
        p = tw_mpw_array(p, d->nwithheld);
        for (w = 0; w < d->nwithheld; w++)
            p = tw_mpw_str(p, d->withheld[w]->key, d->withheld[w]->key_len);
    }
    tw_out_commit(d->io.out, p);
}

/* --------------------------------------------------------------------------------- semantic events (§5) */

static int digits_only(const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int approved_in(const tw_ecr_item *it, const uint8_t *s, size_t n)
{
    const char *v = it->value, *end = it->value + it->value_len;
    while (v < end) {
        size_t len = strlen(v);
        if (len == n && memcmp(v, s, n) == 0)
            return 1;
        v += len + 1;
    }
    return 0;
}

/* MATCH_CODE: the boundaries of fields 0 .. TW_ECR_MAX_FIELD_INDEX from d->seps into d->starts (starts[i] ..
 * starts[i + 1] - 1 is field i) and d->fsep; returns how many fields were found (at most TW_ECR_MAX_FIELD_INDEX + 1). */
static unsigned field_starts(tw_ecr *d)
{
    unsigned i = 1;
    size_t k;
    d->starts[0] = 0;
    d->fsep[0] = 0;
    for (k = 0; k < d->nseps; k++) {
        if (d->seps[k] & SEP_US)
            continue;
        d->starts[i] = d->seps[k] + 1;
        if (i > TW_ECR_MAX_FIELD_INDEX)
            return i;
        d->fsep[i] = (uint32_t)k + 1;
        i++;
    }
    d->starts[i] = d->len + 1; /* the last field ends at the payload's end */
    return i;
}

static int field_is(const tw_ecr *d, unsigned nfields, int32_t field, const char *text, uint32_t len)
{
    uint32_t start, flen;
    if (field < 0 || (unsigned)field >= nfields)
        return 0;
    start = d->starts[field];
    flen = d->starts[field + 1] - 1 - start;
    return flen == len && (len == 0 || memcmp(d->payload + start, text, len) == 0);
}

/* The first layout the payload matches, or NULL; MATCH_CODE also fills d->starts (*nfields fields). */
static const tw_ecr_message *find_message(tw_ecr *d, unsigned *nfields)
{
    const tw_ecr_config *c = &d->cfg;
    uint32_t k;
    *nfields = 0;
    if (c->match == TW_ECR_MATCH_LENGTH) {
        for (k = 0; k < c->n_messages; k++) {
            const tw_ecr_message *m = &c->messages[k];
            if (m->length != d->len)
                continue;
            if (m->where_at >= 0 && m->where_len && memcmp(d->payload + m->where_at, m->where, m->where_len) != 0)
                continue;
            return m;
        }
        return NULL;
    }
    if (c->match == TW_ECR_MATCH_CODE) {
        *nfields = field_starts(d);
        for (k = 0; k < c->n_messages; k++) {
            const tw_ecr_message *m = &c->messages[k];
            if (!field_is(d, *nfields, m->code_field, m->code, m->code_len))
                continue;
            if (m->where_at >= 0 && !field_is(d, *nfields, m->where_at, m->where, m->where_len))
                continue;
            return m;
        }
    }
    return NULL;
}

/* The payload span an item reads: 1 with [*a, *b) set, or 0 when the message does not have it. */
static int item_span(const tw_ecr *d, const tw_ecr_item *it, unsigned nfields, uint32_t *a, uint32_t *b)
{
    uint32_t start, end;
    int32_t k;
    if (d->cfg.match != TW_ECR_MATCH_CODE) {
        *a = it->start;
        *b = it->end;
        return 1;
    }
    if ((unsigned)it->field >= nfields)
        return 0;
    start = d->starts[it->field];
    end = d->starts[it->field + 1] - 1;
    if (it->sub >= 0) {
        /* the field's US entries follow its first entry in seps, up to the FS that ends it */
        size_t j = d->fsep[it->field];
        for (k = 0; k < it->sub; k++, j++) {
            if (j >= d->nseps || !(d->seps[j] & SEP_US))
                return 0;
            start = (d->seps[j] & ~SEP_US) + 1;
        }
        if (j < d->nseps && (d->seps[j] & SEP_US))
            end = d->seps[j] & ~SEP_US;
    }
    *a = start;
    *b = end;
    return 1;
}

/* latin-1 text s[0..n) as UTF-8 at p, no header */
static uint8_t *put_latin1_raw(uint8_t *p, const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint8_t c = s[i];
        if (c < 0x80) {
            *p++ = c;
        } else {
            *p++ = (uint8_t)(0xC0 | (c >> 6));
            *p++ = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    return p;
}

/* a card number s[0..n) (latin-1) as a str, masked like tw_card_mask_pan: the first six (when n >= 13) and the
 * last four characters kept, every other one '*' */
static uint8_t *put_pan(uint8_t *p, const uint8_t *s, size_t n)
{
    size_t first = n >= TW_PAN_MIN_DIGITS ? TW_PAN_KEEP_FIRST : 0;
    size_t last_from = n > TW_PAN_KEEP_LAST ? n - TW_PAN_KEEP_LAST : 0;
    size_t stars, k;
    if (last_from < first)
        last_from = first;
    stars = last_from - first;
    p = tw_mpw_str_header(p, first + count_high(s, first) + stars + (n - last_from) +
                                 count_high(s + last_from, n - last_from));
    p = put_latin1_raw(p, s, first);
    for (k = 0; k < stars; k++)
        *p++ = '*';
    return put_latin1_raw(p, s + last_from, n - last_from);
}

/* Writes the semantic event of message m into d->scratch (reset first) from the unscrubbed payload, and notes the
 * withheld items present (d->withheld, d->nwithheld); returns 1 when a field broke its layout (bad_field). */
static int write_semantic(tw_ecr *d, const tw_ecr_message *m, unsigned nfields)
{
    struct {
        const uint8_t *s;
        size_t n;
        int present;
    } vals[TW_ECR_MAX_ITEMS];
    uint32_t i, nkeys = 0;
    size_t room = EVENT_ROOM + m->event_len;
    int bad = 0;
    uint8_t *p;

    d->nwithheld = 0;
    for (i = 0; i < m->n_items; i++) {
        const tw_ecr_item *it = &m->items[i];
        uint32_t a, b;
        vals[i].present = 0;
        if (it->type == TW_ECR_ITEM_CONST) {
            vals[i].present = 1;
            nkeys++;
            room += 16 + it->key_len + it->value_len;
            continue;
        }
        if (!item_span(d, it, nfields, &a, &b))
            continue;
        while (a < b && d->payload[a] == ' ')
            a++;
        while (b > a && d->payload[b - 1] == ' ')
            b--;
        if (a == b)
            continue;
        if (it->type == TW_ECR_ITEM_WITHHELD) {
            d->withheld[d->nwithheld] = it;
            d->hidden_from[d->nwithheld] = a;
            d->hidden_to[d->nwithheld] = b;
            d->nwithheld++;
            continue;
        }
        if ((it->type == TW_ECR_ITEM_INT && (b - a > TW_ECR_MAX_INT_DIGITS || !digits_only(d->payload + a, b - a))) ||
            (it->type == TW_ECR_ITEM_CURRENCY && (b - a != 3 || !digits_only(d->payload + a, 3)))) {
            bad = 1;
            continue;
        }
        vals[i].s = d->payload + a;
        vals[i].n = b - a;
        vals[i].present = 1;
        nkeys++;
        room += 16 + it->key_len + 5 + 2 * (size_t)(b - a);
    }

    tw_out_reset(&d->scratch);
    p = tw_out_room(&d->scratch, room);
    if (!p) {
        d->io.out->oom = 1; /* the same failure as the main output: the decoder stops */
        return bad;
    }
    p = tw_event_head(p, m->event, m->event_len, nkeys);
    for (i = 0; i < m->n_items; i++) {
        const tw_ecr_item *it = &m->items[i];
        if (!vals[i].present)
            continue;
        p = tw_mpw_str(p, it->key, it->key_len);
        switch (it->type) {
        case TW_ECR_ITEM_CONST:
            p = tw_mpw_str(p, it->value, it->value_len);
            break;
        case TW_ECR_ITEM_STR:
            p = put_latin1_scrubbed(p, vals[i].s, vals[i].n);
            break;
        case TW_ECR_ITEM_INT: {
            uint64_t v = 0;
            size_t k;
            for (k = 0; k < vals[i].n; k++)
                v = v * 10 + (uint64_t)(vals[i].s[k] - '0');
            p = tw_mpw_uint(p, v);
            break;
        }
        case TW_ECR_ITEM_CURRENCY:
            p = tw_mpw_str(p, vals[i].s, 3);
            break;
        case TW_ECR_ITEM_PAN:
            p = put_pan(p, vals[i].s, vals[i].n);
            break;
        default: /* TW_ECR_ITEM_APPROVED */
            p = tw_mpw_bool(p, approved_in(it, vals[i].s, vals[i].n));
            break;
        }
    }
    tw_out_commit(&d->scratch, p);
    return bad;
}

/* A frame whose checksum arrived (section 4). */
static void frame_done(tw_ecr *d)
{
    const tw_ecr_message *m;
    unsigned nfields, k;
    int bad = 0;
    d->state = S_GROUND;
    d->nwithheld = 0;
    if (d->width && d->got != d->expected) {
        emit_checksum_error(d);
        return;
    }
    d->nseps = d->cfg.fs != TW_ECR_NONE ? find_separators(d) : 0;
    m = find_message(d, &nfields);
    if (m)
        bad = write_semantic(d, m, nfields);
    if (bad) {
        emit_error(d, TW_ERR_BAD_FIELD, d->frame_off, 1);
        if (d->cfg.strict)
            return;
    }
    for (k = 0; k < d->nwithheld; k++) /* withheld values never leave, not even in the payload */
        memset(d->payload + d->hidden_from[k], '*', d->hidden_to[k] - d->hidden_from[k]);
    if (d->nwithheld && d->cfg.fs != TW_ECR_NONE)
        d->nseps = find_separators(d); /* a withheld slice (length layouts) or a withheld whole field (code layouts)
                                        * may have covered a separator: the fields split the starred payload */
    scrub_payload(d); /* separators are never digits, spaces or hyphens: fields split alike */
    emit_frame(d);
    if (m && !d->scratch.oom) {
        uint8_t *p = tw_out_room(d->io.out, d->scratch.len);
        if (p) {
            memcpy(p, d->scratch.data, d->scratch.len);
            tw_out_commit(d->io.out, p + d->scratch.len);
        }
    }
}

/* --------------------------------------------------------------------------------------- the link (§3) */

static void start_frame(tw_ecr *d, uint64_t off)
{
    d->state = S_FRAME;
    d->garbage = 0;
    d->frame_off = off;
    d->len = 0;
}

static void etx_seen(tw_ecr *d)
{
    d->expected = frame_checksum(d);
    d->got = 0;
    d->ngot = 0;
    if (d->width == 0)
        frame_done(d);
    else
        d->state = S_CHECK;
}

static void walk(tw_ecr *d, const uint8_t *p, const uint8_t *end)
{
    const uint8_t stx = (uint8_t)d->cfg.stx, etx = (uint8_t)d->cfg.etx;
    /* the first ETX at or after the last search (end: none before the end of this input); reused while p has
     * not passed it, so a run of restarted frames does not rescan the input (that would be quadratic) */
    const uint8_t *next_etx = NULL;
    while (p < end) {
        switch (d->state) {
        case S_GROUND: {
            uint8_t c;
            if (d->garbage) { /* skipped silently up to the next STX or link control byte */
                while (p < end && d->cls[*p] == C_OTHER)
                    p++;
                if (p == end)
                    return;
            }
            c = d->cls[*p];
            switch (c) {
            case C_STX:
                start_frame(d, offset_of(d, p));
                break;
            case C_ACK:
                d->garbage = 0;
                emit_empty(d, "link.ack", 8);
                break;
            case C_NAK:
                d->garbage = 0;
                emit_empty(d, "link.nak", 8);
                break;
            case C_ENQ:
                d->garbage = 0;
                emit_empty(d, "link.enq", 8);
                break;
            case C_EOT:
                d->garbage = 0;
                emit_empty(d, "link.eot", 8);
                break;
            default:
                d->garbage = 1;
                emit_error(d, TW_ERR_UNEXPECTED_BYTE, offset_of(d, p), 0);
                break;
            }
            p++;
            break;
        }
        case S_FRAME: {
            size_t n, room, take;
            const uint8_t *stop, *s;
            if (!next_etx || next_etx < p) {
                next_etx = memchr(p, etx, (size_t)(end - p));
                if (!next_etx)
                    next_etx = end;
            }
            stop = next_etx;
            s = memchr(p, stx, (size_t)(stop - p));
            if (s)
                stop = s;
            n = (size_t)(stop - p);
            room = d->cfg.max_frame - d->len;
            take = n < room ? n : room;
            if (take) {
                memcpy(d->payload + d->len, p, take);
                d->len += (uint32_t)take;
                p += take;
            }
            if (take < n) { /* the byte past the bound: consumed; the frame is abandoned */
                emit_error(d, TW_ERR_FRAME_OVER_LIMIT, d->frame_off, 1);
                d->state = S_GROUND;
                d->garbage = 1;
                p++;
                break;
            }
            if (p == end)
                return;
            if (*p == stx) {
                emit_error(d, TW_ERR_FRAME_RESTARTED, d->frame_off, 1);
                start_frame(d, offset_of(d, p));
            } else {
                etx_seen(d);
            }
            p++;
            break;
        }
        case S_CHECK:
            if (d->cfg.crc_big_endian || d->width == 1)
                d->got = d->got << 8 | *p;
            else
                d->got |= (uint32_t)*p << (8 * d->ngot);
            p++;
            if (++d->ngot == d->width)
                frame_done(d);
            break;
        }
    }
}

/* ------------------------------------------------------------------------------------------------ API */

tw_ecr *tw_ecr_new(const tw_ecr_config *cfg)
{
    tw_ecr *d;
    if (tw_ecr_check_config(cfg) != TW_OK)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->payload = malloc(cfg->max_frame);
    if (cfg->fs != TW_ECR_NONE)
        d->seps = malloc(sizeof(uint32_t) * cfg->max_frame);
    if (!d->payload || (cfg->fs != TW_ECR_NONE && !d->seps)) {
        free(d->seps);
        free(d->payload);
        free(d);
        return NULL;
    }
    d->cfg = *cfg;
    d->width = cfg->checksum == TW_ECR_CK_NONE ? 0 : cfg->checksum <= TW_ECR_CK_SUM ? 1 : 2;
    d->cls[cfg->stx] = C_STX;
    if (cfg->ack != TW_ECR_NONE)
        d->cls[cfg->ack] = C_ACK;
    if (cfg->nak != TW_ECR_NONE)
        d->cls[cfg->nak] = C_NAK;
    if (cfg->enq != TW_ECR_NONE)
        d->cls[cfg->enq] = C_ENQ;
    if (cfg->eot != TW_ECR_NONE)
        d->cls[cfg->eot] = C_EOT;
    d->state = S_GROUND;
    tw_out_init(&d->scratch);
    return d;
}

void tw_ecr_free(tw_ecr *d)
{
    if (!d)
        return;
    tw_out_free(&d->scratch);
    free(d->seps);
    free(d->payload);
    free(d);
}

int tw_ecr_feed(tw_ecr *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len)
        walk(d, data, data + len);
    return tw_stream_end(&d->io, len);
}

int tw_ecr_close(tw_ecr *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    if (d->state != S_GROUND) {
        emit_error(d, TW_ERR_TRUNCATED, d->frame_off, 1);
        d->state = S_GROUND;
    }
    return tw_stream_end(&d->io, 0);
}
