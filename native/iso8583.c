/* ISO 8583 decoder (docs/protocols/iso8583.md). See iso8583.h for the model. */
#include "iso8583.h"

#include <stdlib.h>
#include <string.h>

#include "lenframe.h"
#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_errors.h"
#include "tw_event.h"

/* cp500 -> Latin-1 (cp500 maps the 256 bytes onto the 256 Latin-1 code points); checked against Python's codec
 * by tests/test_iso8583_tables.py */
const uint8_t tw_cp500_to_latin1[256] = {
    0x00, 0x01, 0x02, 0x03, 0x9C, 0x09, 0x86, 0x7F, 0x97, 0x8D, 0x8E, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
    0x10, 0x11, 0x12, 0x13, 0x9D, 0x85, 0x08, 0x87, 0x18, 0x19, 0x92, 0x8F, 0x1C, 0x1D, 0x1E, 0x1F,
    0x80, 0x81, 0x82, 0x83, 0x84, 0x0A, 0x17, 0x1B, 0x88, 0x89, 0x8A, 0x8B, 0x8C, 0x05, 0x06, 0x07,
    0x90, 0x91, 0x16, 0x93, 0x94, 0x95, 0x96, 0x04, 0x98, 0x99, 0x9A, 0x9B, 0x14, 0x15, 0x9E, 0x1A,
    0x20, 0xA0, 0xE2, 0xE4, 0xE0, 0xE1, 0xE3, 0xE5, 0xE7, 0xF1, 0x5B, 0x2E, 0x3C, 0x28, 0x2B, 0x21,
    0x26, 0xE9, 0xEA, 0xEB, 0xE8, 0xED, 0xEE, 0xEF, 0xEC, 0xDF, 0x5D, 0x24, 0x2A, 0x29, 0x3B, 0x5E,
    0x2D, 0x2F, 0xC2, 0xC4, 0xC0, 0xC1, 0xC3, 0xC5, 0xC7, 0xD1, 0xA6, 0x2C, 0x25, 0x5F, 0x3E, 0x3F,
    0xF8, 0xC9, 0xCA, 0xCB, 0xC8, 0xCD, 0xCE, 0xCF, 0xCC, 0x60, 0x3A, 0x23, 0x40, 0x27, 0x3D, 0x22,
    0xD8, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0xAB, 0xBB, 0xF0, 0xFD, 0xFE, 0xB1,
    0xB0, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E, 0x6F, 0x70, 0x71, 0x72, 0xAA, 0xBA, 0xE6, 0xB8, 0xC6, 0xA4,
    0xB5, 0x7E, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7A, 0xA1, 0xBF, 0xD0, 0xDD, 0xDE, 0xAE,
    0xA2, 0xA3, 0xA5, 0xB7, 0xA9, 0xA7, 0xB6, 0xBC, 0xBD, 0xBE, 0xAC, 0x7C, 0xAF, 0xA8, 0xB4, 0xD7,
    0x7B, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0xAD, 0xF4, 0xF6, 0xF2, 0xF3, 0xF5,
    0x7D, 0x4A, 0x4B, 0x4C, 0x4D, 0x4E, 0x4F, 0x50, 0x51, 0x52, 0xB9, 0xFB, 0xFC, 0xF9, 0xFA, 0xFF,
    0x5C, 0xF7, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5A, 0xB2, 0xD4, 0xD6, 0xD2, 0xD3, 0xD5,
    0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0xB3, 0xDB, 0xDC, 0xD9, 0xDA, 0x9F,
};

/* ------------------------------------------------------------------------------------------------ state */

enum slot_state { S_EMIT, S_WITHHELD, S_DROPPED };

struct slot {
    const uint8_t *data; /* the field's bytes (for hex fields: the decoded bytes in `hexbuf`) */
    uint32_t n;          /* bytes at data */
    uint16_t length;     /* the declared length (digits for TW_ISO_DIGITS) */
    uint16_t tlv_top;    /* TLV fields: entries of the top level that are written */
    uint16_t tlv_held;   /* TLV fields: withheld tags in the whole field */
    uint8_t num;
    uint8_t state;
};

#define MAX_BINS 64
#define MAX_TEXT (2 * TW_MAX_ISO_FIELD + 2) /* a bcd field of 9999 bytes is 19998 digits */

struct tw_iso8583 {
    tw_iso_field fields[129];
    tw_iso_bin bins[MAX_BINS];
    uint32_t n_bins;
    int mti_enc, bitmap_hex, strict;
    unsigned header;
    tw_lenframe f;
    tw_stream io;

    /* the message being decoded */
    uint64_t msg_off;
    char mti[4];
    unsigned nerrors;
    struct slot slots[128];
    unsigned nslots;
    uint8_t slot_of[129];  /* 1 + index into slots, 0 when the field is absent */
    uint8_t hexbuf[TW_MAX_ISO_FRAME / 2 + 1];
    size_t hexlen;
    uint8_t text[MAX_TEXT]; /* a field as Latin-1 characters */
    uint8_t pan[MAX_TEXT];  /* the masked PAN of payment.result */
    uint64_t tag_keys[TW_MAX_ISO_FIELD / 2 + 1]; /* tlv_check's scratch */
    size_t pan_len;
};

static const char *const digits3 = "0123456789";

/* the msgpack str "n" of a field number n (1..128): fixstr header + up to 3 digits, padded to 4 bytes */
static const uint8_t num_keys[129][4] = {
    {0, 0, 0, 0}, {0xa1, 0x31, 0x00, 0x00}, {0xa1, 0x32, 0x00, 0x00}, {0xa1, 0x33, 0x00, 0x00},
    {0xa1, 0x34, 0x00, 0x00}, {0xa1, 0x35, 0x00, 0x00}, {0xa1, 0x36, 0x00, 0x00}, {0xa1, 0x37, 0x00, 0x00},
    {0xa1, 0x38, 0x00, 0x00}, {0xa1, 0x39, 0x00, 0x00}, {0xa2, 0x31, 0x30, 0x00}, {0xa2, 0x31, 0x31, 0x00},
    {0xa2, 0x31, 0x32, 0x00}, {0xa2, 0x31, 0x33, 0x00}, {0xa2, 0x31, 0x34, 0x00}, {0xa2, 0x31, 0x35, 0x00},
    {0xa2, 0x31, 0x36, 0x00}, {0xa2, 0x31, 0x37, 0x00}, {0xa2, 0x31, 0x38, 0x00}, {0xa2, 0x31, 0x39, 0x00},
    {0xa2, 0x32, 0x30, 0x00}, {0xa2, 0x32, 0x31, 0x00}, {0xa2, 0x32, 0x32, 0x00}, {0xa2, 0x32, 0x33, 0x00},
    {0xa2, 0x32, 0x34, 0x00}, {0xa2, 0x32, 0x35, 0x00}, {0xa2, 0x32, 0x36, 0x00}, {0xa2, 0x32, 0x37, 0x00},
    {0xa2, 0x32, 0x38, 0x00}, {0xa2, 0x32, 0x39, 0x00}, {0xa2, 0x33, 0x30, 0x00}, {0xa2, 0x33, 0x31, 0x00},
    {0xa2, 0x33, 0x32, 0x00}, {0xa2, 0x33, 0x33, 0x00}, {0xa2, 0x33, 0x34, 0x00}, {0xa2, 0x33, 0x35, 0x00},
    {0xa2, 0x33, 0x36, 0x00}, {0xa2, 0x33, 0x37, 0x00}, {0xa2, 0x33, 0x38, 0x00}, {0xa2, 0x33, 0x39, 0x00},
    {0xa2, 0x34, 0x30, 0x00}, {0xa2, 0x34, 0x31, 0x00}, {0xa2, 0x34, 0x32, 0x00}, {0xa2, 0x34, 0x33, 0x00},
    {0xa2, 0x34, 0x34, 0x00}, {0xa2, 0x34, 0x35, 0x00}, {0xa2, 0x34, 0x36, 0x00}, {0xa2, 0x34, 0x37, 0x00},
    {0xa2, 0x34, 0x38, 0x00}, {0xa2, 0x34, 0x39, 0x00}, {0xa2, 0x35, 0x30, 0x00}, {0xa2, 0x35, 0x31, 0x00},
    {0xa2, 0x35, 0x32, 0x00}, {0xa2, 0x35, 0x33, 0x00}, {0xa2, 0x35, 0x34, 0x00}, {0xa2, 0x35, 0x35, 0x00},
    {0xa2, 0x35, 0x36, 0x00}, {0xa2, 0x35, 0x37, 0x00}, {0xa2, 0x35, 0x38, 0x00}, {0xa2, 0x35, 0x39, 0x00},
    {0xa2, 0x36, 0x30, 0x00}, {0xa2, 0x36, 0x31, 0x00}, {0xa2, 0x36, 0x32, 0x00}, {0xa2, 0x36, 0x33, 0x00},
    {0xa2, 0x36, 0x34, 0x00}, {0xa2, 0x36, 0x35, 0x00}, {0xa2, 0x36, 0x36, 0x00}, {0xa2, 0x36, 0x37, 0x00},
    {0xa2, 0x36, 0x38, 0x00}, {0xa2, 0x36, 0x39, 0x00}, {0xa2, 0x37, 0x30, 0x00}, {0xa2, 0x37, 0x31, 0x00},
    {0xa2, 0x37, 0x32, 0x00}, {0xa2, 0x37, 0x33, 0x00}, {0xa2, 0x37, 0x34, 0x00}, {0xa2, 0x37, 0x35, 0x00},
    {0xa2, 0x37, 0x36, 0x00}, {0xa2, 0x37, 0x37, 0x00}, {0xa2, 0x37, 0x38, 0x00}, {0xa2, 0x37, 0x39, 0x00},
    {0xa2, 0x38, 0x30, 0x00}, {0xa2, 0x38, 0x31, 0x00}, {0xa2, 0x38, 0x32, 0x00}, {0xa2, 0x38, 0x33, 0x00},
    {0xa2, 0x38, 0x34, 0x00}, {0xa2, 0x38, 0x35, 0x00}, {0xa2, 0x38, 0x36, 0x00}, {0xa2, 0x38, 0x37, 0x00},
    {0xa2, 0x38, 0x38, 0x00}, {0xa2, 0x38, 0x39, 0x00}, {0xa2, 0x39, 0x30, 0x00}, {0xa2, 0x39, 0x31, 0x00},
    {0xa2, 0x39, 0x32, 0x00}, {0xa2, 0x39, 0x33, 0x00}, {0xa2, 0x39, 0x34, 0x00}, {0xa2, 0x39, 0x35, 0x00},
    {0xa2, 0x39, 0x36, 0x00}, {0xa2, 0x39, 0x37, 0x00}, {0xa2, 0x39, 0x38, 0x00}, {0xa2, 0x39, 0x39, 0x00},
    {0xa3, 0x31, 0x30, 0x30}, {0xa3, 0x31, 0x30, 0x31}, {0xa3, 0x31, 0x30, 0x32}, {0xa3, 0x31, 0x30, 0x33},
    {0xa3, 0x31, 0x30, 0x34}, {0xa3, 0x31, 0x30, 0x35}, {0xa3, 0x31, 0x30, 0x36}, {0xa3, 0x31, 0x30, 0x37},
    {0xa3, 0x31, 0x30, 0x38}, {0xa3, 0x31, 0x30, 0x39}, {0xa3, 0x31, 0x31, 0x30}, {0xa3, 0x31, 0x31, 0x31},
    {0xa3, 0x31, 0x31, 0x32}, {0xa3, 0x31, 0x31, 0x33}, {0xa3, 0x31, 0x31, 0x34}, {0xa3, 0x31, 0x31, 0x35},
    {0xa3, 0x31, 0x31, 0x36}, {0xa3, 0x31, 0x31, 0x37}, {0xa3, 0x31, 0x31, 0x38}, {0xa3, 0x31, 0x31, 0x39},
    {0xa3, 0x31, 0x32, 0x30}, {0xa3, 0x31, 0x32, 0x31}, {0xa3, 0x31, 0x32, 0x32}, {0xa3, 0x31, 0x32, 0x33},
    {0xa3, 0x31, 0x32, 0x34}, {0xa3, 0x31, 0x32, 0x35}, {0xa3, 0x31, 0x32, 0x36}, {0xa3, 0x31, 0x32, 0x37},
    {0xa3, 0x31, 0x32, 0x38},
};

static uint8_t *put_num_key(uint8_t *p, unsigned n)
{
    memcpy(p, num_keys[n], 4); /* the room reserved always covers 4 bytes */
    return p + 1 + (num_keys[n][0] & 0x1f);
}

static const char HEXU[] = "0123456789ABCDEF";
#define NIBBLE(b, i) ((i) % 2 ? (b)[(i) / 2] & 15 : (b)[(i) / 2] >> 4)
static const char HEXL[] = "0123456789abcdef";

static int hexval(uint8_t c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* ------------------------------------------------------------------------------------------------ config */

int tw_iso8583_check_config(const tw_iso_config *cfg)
{
    unsigned n;
    uint32_t i;
    if (!cfg || !cfg->fields || cfg->mti < 0 || cfg->mti > TW_ISO_BCD || cfg->header > TW_MAX_LINK_HEADER ||
        cfg->framing < TW_LF_LEN2 || cfg->framing > TW_LF_NONE || cfg->n_bins > MAX_BINS ||
        (cfg->n_bins && !cfg->bins))
        return TW_ERR_BAD_CONFIG;
    for (n = 0; n <= 128; n++) {
        const tw_iso_field *f = &cfg->fields[n];
        unsigned width;
        if (!(f->flags & TW_ISO_DEFINED))
            continue;
        if (n < 2 || f->flags > 15 || f->kind > 4 || f->prefix > TW_ISO_BINARY || f->data > TW_ISO_HEX ||
            f->max < 1 || f->max > TW_MAX_ISO_FIELD)
            return TW_ERR_BAD_CONFIG;
        if ((f->flags & TW_ISO_DIGITS) && f->data != TW_ISO_BCD)
            return TW_ERR_BAD_CONFIG;
        if ((f->flags & TW_ISO_PAD_RIGHT) && !(f->flags & TW_ISO_DIGITS))
            return TW_ERR_BAD_CONFIG;
        if ((f->flags & TW_ISO_TLV) && f->data != TW_ISO_BINARY && f->data != TW_ISO_HEX)
            return TW_ERR_BAD_CONFIG;
        if (f->kind == 0) {
            width = 0;
        } else {
            static const unsigned limit[5] = {0, 9, 99, 999, 9999};
            width = f->prefix <= TW_ISO_EBCDIC ? f->kind : (f->kind <= 2 ? 1u : 2u);
            if (f->max > (f->prefix == TW_ISO_BINARY && f->kind <= 2 ? 255u : limit[f->kind]))
                return TW_ERR_BAD_CONFIG;
        }
        if (f->prefix_width != width)
            return TW_ERR_BAD_CONFIG;
    }
    for (i = 0; i < cfg->n_bins; i++) {
        const tw_iso_bin *b = &cfg->bins[i];
        static const uint32_t pow10[7] = {1, 10, 100, 1000, 10000, 100000, 1000000};
        if (b->digits < 1 || b->digits > 6 || b->lo > b->hi || b->hi >= pow10[b->digits] || !b->brand[0] ||
            memchr(b->brand, 0, sizeof(b->brand)) == NULL)
            return TW_ERR_BAD_CONFIG;
    }
    return TW_OK;
}

tw_iso8583 *tw_iso8583_new(const tw_iso_config *cfg)
{
    tw_iso8583 *d;
    if (tw_iso8583_check_config(cfg) != TW_OK)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    memcpy(d->fields, cfg->fields, sizeof(d->fields));
    d->fields[0].flags = d->fields[1].flags = 0;
    if (cfg->n_bins)
        memcpy(d->bins, cfg->bins, cfg->n_bins * sizeof(tw_iso_bin));
    d->n_bins = cfg->n_bins;
    d->mti_enc = cfg->mti;
    d->bitmap_hex = cfg->bitmap_hex != 0;
    d->strict = cfg->strict != 0;
    d->header = cfg->header;
    if (tw_lenframe_init(&d->f, cfg->framing, cfg->header, TW_MAX_ISO_FRAME) != TW_OK) {
        free(d);
        return NULL;
    }
    return d;
}

void tw_iso8583_free(tw_iso8583 *d)
{
    if (!d)
        return;
    tw_lenframe_release(&d->f);
    free(d);
}

/* ------------------------------------------------------------------------------------------------ errors */

/* protocol.error {code, reason, offset, raw, field} for a message */
static void msg_error(tw_iso8583 *d, int code, const char *field, size_t field_len)
{
    uint8_t *p = tw_out_room(d->io.out, 128 + tw_error_name_len(code) + tw_error_reason_len(code));
    d->nerrors++;
    if (!p)
        return;
    p = TW_HEAD(p, "protocol.error", 5);
    p = TW_KEY(p, "code");
    p = tw_mpw_str(p, tw_error_name(code), tw_error_name_len(code));
    p = TW_KEY(p, "reason");
    p = tw_mpw_str(p, tw_error_reason(code), tw_error_reason_len(code));
    p = TW_KEY(p, "offset");
    p = tw_mpw_uint(p, d->msg_off);
    p = TW_KEY(p, "raw"); /* always empty: out of step, the prefix and MTI may be message data (payment.md 2) */
    p = tw_mpw_bin_header(p, 0);
    p = TW_KEY(p, "field");
    p = tw_mpw_str(p, field, field_len);
    tw_out_commit(d->io.out, p);
}
#define MSG_ERROR_LIT(d, code, lit) msg_error((d), (code), (lit), sizeof(lit) - 1)

static void field_error(tw_iso8583 *d, int code, unsigned n)
{
    char k[3];
    unsigned len = 0;
    if (n >= 100)
        k[len++] = digits3[n / 100];
    if (n >= 10)
        k[len++] = digits3[(n / 10) % 10];
    k[len++] = digits3[n % 10];
    msg_error(d, code, k, len);
}

/* ------------------------------------------------------------------------------------------------ TLV */

/* One BER-TLV element at p[0..n): 0 and its parts, or -1 when it is not valid (section 5). */
struct tlv {
    const uint8_t *tag;
    unsigned tag_len;
    const uint8_t *value;
    size_t len;
    size_t size; /* bytes of the whole element */
};

static int tlv_next(const uint8_t *p, size_t n, struct tlv *t)
{
    size_t i = 1, len;
    if (n == 0)
        return -1;
    if ((p[0] & 0x1F) == 0x1F) {
        for (;;) {
            if (i >= n || i == TW_MAX_ISO_TAG_BYTES)
                return -1;
            if (!(p[i++] & 0x80))
                break;
        }
    }
    t->tag = p;
    t->tag_len = (unsigned)i;
    if (i >= n)
        return -1;
    len = p[i++];
    if (len & 0x80) {
        size_t k = len & 0x7F, j;
        if (k == 0 || k > 3 || n - i < k)
            return -1;
        len = 0;
        for (j = 0; j < k; j++)
            len = len << 8 | p[i++];
    }
    if (len > n - i)
        return -1;
    t->value = p + i;
    t->len = len;
    t->size = i + len;
    return 0;
}

enum tlv_rule { R_PLAIN, R_PAN, R_TRACK2, R_TRACK1, R_WITHHELD };

static enum tlv_rule tlv_rule(const struct tlv *t)
{
    const uint8_t *g = t->tag;
    if (g[0] & 0x20)
        return R_PLAIN;
    if (t->tag_len == 1) {
        switch (g[0]) {
        case 0x5A:
            return R_PAN;
        case 0x57:
            return R_TRACK2;
        case 0x56:
            return R_TRACK1;
        default:
            return R_PLAIN;
        }
    }
    if (t->tag_len == 2) {
        unsigned v = (unsigned)g[0] << 8 | g[1];
        switch (v) {
        case 0x9F6B:
        case 0x9F20:
            return R_TRACK2;
        case 0x9F1F:
            return R_TRACK1;
        case 0x5F20: /* cardholder name */
        case 0x9F0B: /* cardholder name extended */
        case 0x5F24: /* expiry */
            return R_WITHHELD;
        default:
            return R_PLAIN;
        }
    }
    return R_PLAIN;
}

/* A tag as one number: its bytes big-endian, its length above them (tags are at most 4 bytes). */
static uint64_t tag_key(const struct tlv *t)
{
    uint64_t k = t->tag_len;
    unsigned i;
    for (i = 0; i < t->tag_len; i++)
        k = k << 8 | t->tag[i];
    return k;
}

static int key_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Up to this many elements a level checks for a repeated tag by comparing each new key with the ones before it
 * (cheap for the usual field 55 of 10-30 tags); a larger level sorts its keys instead, so a custom LLLL TLV field
 * of thousands of elements costs O(k log k), not O(k^2). Either way the answer is the same. */
#define TLV_SMALL_LEVEL 32

/* 0 when p[0..n) is a valid TLV level at `depth` (1 = the field): structure, depth, no repeated tag. The level's
 * tag keys go to keys[0..), which has room for one per two bytes of the field (an element takes at least two).
 * Also counts the entries the level writes (*top, when asked) and adds the withheld tags of the whole subtree to
 * *withheld. */
static int tlv_check(const uint8_t *p, size_t n, int depth, uint64_t *keys, uint32_t *top, uint32_t *withheld)
{
    size_t pos = 0, k = 0, i;
    uint32_t held = 0;
    int nested = 0;
    struct tlv t;
    while (pos < n) {
        uint64_t key;
        if (tlv_next(p + pos, n - pos, &t) != 0)
            return -1;
        key = tag_key(&t);
        if (k < TLV_SMALL_LEVEL) { /* a small level: compare with the keys so far */
            for (i = 0; i < k; i++)
                if (keys[i] == key)
                    return -1;
        }
        keys[k++] = key;
        pos += t.size;
        if (t.tag[0] & 0x20)
            nested = 1;
        else if (tlv_rule(&t) == R_WITHHELD)
            held++;
    }
    if (k > TLV_SMALL_LEVEL) { /* a large level: sort its keys once, a repeat is then a neighbour, O(k log k) */
        qsort(keys, k, sizeof(keys[0]), key_cmp);
        for (i = 1; i < k; i++)
            if (keys[i] == keys[i - 1])
                return -1;
    }
    if (top)
        *top = (uint32_t)k - held;
    *withheld += held;
    if (!nested)
        return 0;
    for (pos = 0; pos < n; pos += t.size) { /* then the constructed elements, each a level of its own */
        tlv_next(p + pos, n - pos, &t);
        if ((t.tag[0] & 0x20) &&
            (depth == TW_MAX_ISO_TLV_DEPTH || tlv_check(t.value, t.len, depth + 1, keys + k, NULL, withheld) != 0))
            return -1;
    }
    return 0;
}

static uint8_t *put_tag_key(uint8_t *p, const struct tlv *t)
{
    unsigned i;
    p = tw_mpw_str_header(p, 2 * t->tag_len);
    for (i = 0; i < t->tag_len; i++) {
        *p++ = (uint8_t)HEXU[t->tag[i] >> 4];
        *p++ = (uint8_t)HEXU[t->tag[i] & 15];
    }
    return p;
}

/* ------------------------------------------------------------------------------------------ card data */

/* Latin-1 characters as a msgpack str (UTF-8), scrubbed when asked. ASCII (the common case) is copied in one
 * pass; a byte >= 0x80 sends the copy through the slow path, which writes two UTF-8 bytes for it. */
static uint8_t *put_latin1(uint8_t *p, const uint8_t *s, size_t n, int scrub)
{
    size_t extra = 0, i;
    uint8_t *start, high = 0;
    start = tw_mpw_str_header(p, n);
    for (i = 0; i < n; i++) {
        start[i] = s[i];
        high |= s[i];
    }
    if (high & 0x80) {
        for (i = 0; i < n; i++)
            extra += s[i] >> 7;
        start = tw_mpw_str_header(p, n + extra);
        p = start;
        for (i = 0; i < n; i++) {
            uint8_t c = s[i];
            if (c < 0x80) {
                *p++ = c;
            } else {
                *p++ = (uint8_t)(0xC0 | (c >> 6));
                *p++ = (uint8_t)(0x80 | (c & 0x3F));
            }
        }
    } else {
        p = start + n;
    }
    if (scrub && n >= TW_PAN_MIN_DIGITS)
        tw_card_scrub(start, (size_t)(p - start));
    return p;
}

static uint8_t *put_masked_pan(uint8_t *p, const uint8_t *pan, size_t n)
{
    uint8_t m[32];
    tw_card_mask_pan(pan, n, m); /* n <= 19 */
    return put_latin1(p, m, n, 0);
}

static int is_digits(const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* The PAN of track 2/3 characters: before the first '=' or 'D', 1..19 digits. Returns its length, 0 if none. */
static size_t track2_pan(const uint8_t *s, size_t n)
{
    size_t k;
    for (k = 0; k < n; k++)
        if (s[k] == '=' || s[k] == 'D')
            break;
    if (k == n || k < 1 || k > 19 || !is_digits(s, k))
        return 0;
    return k;
}

/* The PAN of track 1 characters: between a leading 'B' (after an optional '%') and the first '^'. *start is
 * where it begins. */
static size_t track1_pan(const uint8_t *s, size_t n, size_t *start)
{
    size_t b = (n && s[0] == '%') ? 1 : 0, j;
    if (b >= n || s[b] != 'B')
        return 0;
    for (j = b + 1; j < n; j++)
        if (s[j] == '^')
            break;
    if (j == n || j - b - 1 < 1 || j - b - 1 > 19 || !is_digits(s + b + 1, j - b - 1))
        return 0;
    *start = b + 1;
    return j - b - 1;
}

/* {"pan": masked} or {} */
static uint8_t *put_track(uint8_t *p, const uint8_t *s, size_t n, int track1)
{
    size_t start = 0, k = track1 ? track1_pan(s, n, &start) : track2_pan(s, n);
    if (!k)
        return tw_mpw_map(p, 0);
    p = tw_mpw_map(p, 1);
    p = TW_KEY(p, "pan");
    return put_masked_pan(p, s + start, k);
}

/* bytes as uppercase hex characters into dst; returns the count */
static size_t to_hex(uint8_t *dst, const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        dst[2 * i] = (uint8_t)HEXU[s[i] >> 4];
        dst[2 * i + 1] = (uint8_t)HEXU[s[i] & 15];
    }
    return 2 * n;
}

/* ------------------------------------------------------------------------------------------ TLV writing */

/* entries of a level that are written (withheld tags are not) */
static uint32_t tlv_count(const uint8_t *p, size_t n)
{
    size_t pos = 0;
    uint32_t c = 0;
    struct tlv t;
    while (pos < n) {
        tlv_next(p + pos, n - pos, &t);
        if (tlv_rule(&t) != R_WITHHELD)
            c++;
        pos += t.size;
    }
    return c;
}

/* the TLV level v[0..n) as a map of `count` entries */
static uint8_t *put_tlv(uint8_t *p, const uint8_t *v, size_t n, uint32_t count)
{
    size_t pos = 0;
    struct tlv t;
    uint8_t tmp[22];
    p = tw_mpw_map(p, count);
    while (pos < n) {
        enum tlv_rule r;
        tlv_next(v + pos, n - pos, &t);
        pos += t.size;
        r = tlv_rule(&t);
        if (r == R_WITHHELD)
            continue;
        p = put_tag_key(p, &t);
        if (t.tag[0] & 0x20) {
            p = put_tlv(p, t.value, t.len, tlv_count(t.value, t.len));
        } else if (r == R_PLAIN) {
            uint8_t *start;
            p = tw_mpw_bin_header(p, t.len);
            start = p;
            if (t.len)
                memcpy(p, t.value, t.len);
            p += t.len;
            if (t.len >= TW_PAN_MIN_DIGITS)
                tw_card_scrub(start, t.len);
        } else if (r == R_TRACK1) {
            p = put_track(p, t.value, t.len, 1);
        } else {
            if (r == R_TRACK2) {
                /* BCD: the value as uppercase hex; a PAN ends within the first 20 digits */
                size_t nd = to_hex(tmp, t.value, t.len < 11 ? t.len : 11);
                p = put_track(p, tmp, nd, 0);
            } else { /* R_PAN (5A): its digits, trailing F padding removed, masked */
                size_t nd = 2 * t.len, i;
                uint8_t *start;
                while (nd > 0 && NIBBLE(t.value, nd - 1) == 0xF)
                    nd--;
                p = tw_mpw_str_header(p, nd);
                start = p;
                for (i = 0; i < nd; i++)
                    *p++ = (uint8_t)HEXU[NIBBLE(t.value, i)];
                tw_card_mask_pan(start, nd, start);
            }
        }
    }
    return p;
}

/* ------------------------------------------------------------------------------------- field values */

static int is_card_field(unsigned n) { return n == 2 || n == 35 || n == 36 || n == 45; }

/* A text-type slot as Latin-1 characters: ascii in place, ebcdic and bcd into d->text. */
static size_t slot_text(tw_iso8583 *d, const struct slot *s, const uint8_t **out)
{
    const tw_iso_field *f = &d->fields[s->num];
    size_t i;
    if (f->data == TW_ISO_ASCII) {
        *out = s->data;
        return s->n;
    }
    *out = d->text;
    if (f->data == TW_ISO_EBCDIC) {
        for (i = 0; i < s->n; i++)
            d->text[i] = tw_cp500_to_latin1[s->data[i]];
        return s->n;
    } else {
        size_t nd = 2 * (size_t)s->n, skip = 0;
        if ((f->flags & TW_ISO_DIGITS) && (s->length & 1)) {
            nd = s->length;
            skip = (f->flags & TW_ISO_PAD_RIGHT) ? 0 : 1;
        }
        for (i = 0; i < nd; i++)
            d->text[i] = (uint8_t)HEXU[NIBBLE(s->data, i + skip)];
        return nd;
    }
}

/* the scrubbed characters of text slot s, in d->text */
static size_t slot_text_scrubbed(tw_iso8583 *d, const struct slot *s)
{
    const uint8_t *t;
    size_t n = slot_text(d, s, &t);
    if (t != d->text)
        memcpy(d->text, t, n);
    if (n >= TW_PAN_MIN_DIGITS)
        tw_card_scrub(d->text, n);
    return n;
}

static uint8_t *put_value(tw_iso8583 *d, uint8_t *p, const struct slot *s)
{
    const tw_iso_field *f = &d->fields[s->num];
    const uint8_t *t;
    size_t n;
    if (f->data == TW_ISO_BINARY || f->data == TW_ISO_HEX) {
        uint8_t *start;
        if (f->flags & TW_ISO_TLV)
            return put_tlv(p, s->data, s->n, s->tlv_top);
        p = tw_mpw_bin_header(p, s->n);
        start = p;
        if (s->n)
            memcpy(p, s->data, s->n);
        p += s->n;
        if (s->n >= TW_PAN_MIN_DIGITS)
            tw_card_scrub(start, s->n);
        return p;
    }
    n = slot_text(d, s, &t);
    switch (s->num) {
    case 2:
        if (t != d->text)
            memcpy(d->text, t, n);
        tw_card_mask_pan(d->text, n, d->text);
        return put_latin1(p, d->text, n, 0);
    case 35:
    case 36:
        return put_track(p, t, n, 0);
    case 45:
        return put_track(p, t, n, 1);
    default:
        return put_latin1(p, t, n, 1);
    }
}

/* ------------------------------------------------------------------------------------- withheld keys */

/* Counts (and, with pp, writes) the withheld tags of a TLV level under `path`. */
static uint32_t tlv_withheld(const uint8_t *v, size_t n, uint8_t **pp, char *path, size_t plen)
{
    size_t pos = 0;
    uint32_t c = 0;
    struct tlv t;
    while (pos < n) {
        size_t k, i;
        tlv_next(v + pos, n - pos, &t);
        pos += t.size;
        if (!(t.tag[0] & 0x20) && tlv_rule(&t) != R_WITHHELD)
            continue;
        k = plen;
        path[k++] = '.';
        for (i = 0; i < t.tag_len; i++) {
            path[k++] = HEXU[t.tag[i] >> 4];
            path[k++] = HEXU[t.tag[i] & 15];
        }
        if (t.tag[0] & 0x20) {
            c += tlv_withheld(t.value, t.len, pp, path, k);
        } else {
            c++;
            if (pp)
                *pp = tw_mpw_str(*pp, path, k);
        }
    }
    return c;
}

static uint32_t withheld(tw_iso8583 *d, uint8_t **pp)
{
    unsigned i;
    uint32_t c = 0;
    char path[3 + TW_MAX_ISO_TLV_DEPTH * (1 + 2 * TW_MAX_ISO_TAG_BYTES) + 1];
    for (i = 0; i < d->nslots; i++) {
        const struct slot *s = &d->slots[i];
        if (s->state == S_WITHHELD) {
            c++;
            if (pp)
                *pp = put_num_key(*pp, s->num);
        } else if (s->state == S_EMIT && (d->fields[s->num].flags & TW_ISO_TLV) && s->tlv_held) {
            size_t k = 0;
            unsigned num = s->num;
            c += s->tlv_held;
            if (!pp)
                continue;
            if (num >= 100)
                path[k++] = digits3[num / 100];
            if (num >= 10)
                path[k++] = digits3[(num / 10) % 10];
            path[k++] = digits3[num % 10];
            tlv_withheld(s->data, s->n, pp, path, k);
        }
    }
    return c;
}

/* ------------------------------------------------------------------------------------- semantic events */

static const struct slot *text_slot(const tw_iso8583 *d, unsigned n)
{
    const struct slot *s;
    if (!d->slot_of[n])
        return NULL;
    s = &d->slots[d->slot_of[n] - 1];
    if (s->state != S_EMIT || is_card_field(n) || d->fields[n].data > TW_ISO_BCD)
        return NULL;
    return s;
}

/* the value of a str field written as the event's value */
static uint8_t *put_str_field(tw_iso8583 *d, uint8_t *p, const struct slot *s)
{
    const uint8_t *t;
    size_t n = slot_text(d, s, &t);
    return put_latin1(p, t, n, 1);
}


struct amount {
    int has_amount, has_currency;
    uint64_t amount;
    uint8_t currency[3];
};

static void get_amount(tw_iso8583 *d, struct amount *a)
{
    const struct slot *s = text_slot(d, 4);
    size_t n, i;
    a->has_amount = a->has_currency = 0;
    if (s) {
        n = slot_text_scrubbed(d, s);
        if (n >= 1 && n <= 18 && is_digits(d->text, n)) {
            a->has_amount = 1;
            a->amount = 0;
            for (i = 0; i < n; i++)
                a->amount = a->amount * 10 + (uint64_t)(d->text[i] - '0');
        }
    }
    s = text_slot(d, 49);
    if (s) {
        n = slot_text_scrubbed(d, s);
        if (n == 3 && is_digits(d->text, 3)) {
            a->has_currency = 1;
            memcpy(a->currency, d->text, 3);
        }
    }
}

static uint8_t *put_amount(uint8_t *p, const struct amount *a)
{
    if (a->has_amount) {
        p = TW_KEY(p, "amount_minor");
        p = tw_mpw_uint(p, a->amount);
    }
    if (a->has_currency) {
        p = TW_KEY(p, "currency");
        p = tw_mpw_str(p, a->currency, 3);
    }
    return p;
}

/* The masked PAN of field 2, else of the first track field (35, 45, 36) holding one, into d->pan. */
static int result_pan(tw_iso8583 *d)
{
    static const unsigned order[4] = {2, 35, 45, 36};
    unsigned i;
    for (i = 0; i < 4; i++) {
        const struct slot *s;
        const uint8_t *t;
        size_t n, k, start = 0;
        unsigned num = order[i];
        if (!d->slot_of[num])
            continue;
        s = &d->slots[d->slot_of[num] - 1];
        if (s->state != S_EMIT)
            continue;
        n = slot_text(d, s, &t);
        if (num == 2) {
            tw_card_mask_pan(t, n, d->pan);
            d->pan_len = n;
            return 1;
        }
        k = num == 45 ? track1_pan(t, n, &start) : track2_pan(t, n);
        if (k) {
            tw_card_mask_pan(t + start, k, d->pan);
            d->pan_len = k;
            return 1;
        }
    }
    return 0;
}

static const tw_iso_bin *card_brand(const tw_iso8583 *d)
{
    const tw_iso_bin *found = NULL;
    uint32_t i;
    if (d->pan_len < 13 || d->pan_len > 19 || !is_digits(d->pan, 6))
        return NULL;
    for (i = 0; i < d->n_bins; i++) {
        const tw_iso_bin *b = &d->bins[i];
        uint32_t v = 0;
        unsigned k;
        for (k = 0; k < b->digits; k++)
            v = v * 10 + (uint32_t)(d->pan[k] - '0');
        if (v >= b->lo && v <= b->hi) {
            if (found && strcmp(found->brand, b->brand) != 0)
                return NULL;
            found = b;
        }
    }
    return found;
}

static const char *entry_mode(tw_iso8583 *d, size_t *len)
{
    const struct slot *s = text_slot(d, 22);
    size_t n;
    if (!s)
        return NULL;
    n = slot_text_scrubbed(d, s);
    if (n < 2)
        return NULL;
#define ENTRY(a, b, name)                                                                                        \
    if (d->text[0] == (a) && d->text[1] == (b)) {                                                              \
        *len = sizeof(name) - 1;                                                                               \
        return name;                                                                                           \
    }
    ENTRY('0', '5', "chip")
    ENTRY('0', '7', "contactless")
    ENTRY('0', '2', "swipe")
    ENTRY('9', '0', "swipe")
    ENTRY('0', '1', "manual")
#undef ENTRY
    return NULL;
}

/* An application identifier: 5-16 bytes whose first nibble is A or D (the registered and national RID categories
 * of ISO/IEC 7816-5), so that a PAN a device puts where an AID belongs is not emitted (payment.md section 2). */
static int looks_like_aid(const struct tlv *t)
{
    return t->len >= 5 && t->len <= 16 && ((t->value[0] >> 4) == 0xA || (t->value[0] >> 4) == 0xD);
}

/* field 55's top-level tag 4F when it looks like an AID, else 84 when it does (one scan) */
static int find_aid(const tw_iso8583 *d, struct tlv *out)
{
    const struct slot *s;
    size_t pos = 0;
    int found = 0;
    struct tlv t;
    if (!d->slot_of[55])
        return 0;
    s = &d->slots[d->slot_of[55] - 1];
    if (s->state != S_EMIT || !(d->fields[55].flags & TW_ISO_TLV))
        return 0;
    while (pos < s->n) {
        tlv_next(s->data + pos, s->n - pos, &t);
        pos += t.size;
        if (t.tag_len != 1 || !looks_like_aid(&t))
            continue;
        if (t.tag[0] == 0x4F) {
            *out = t;
            return 1;
        }
        if (t.tag[0] == 0x84 && !found) {
            *out = t;
            found = 1;
        }
    }
    return found;
}

static void emit_semantic(tw_iso8583 *d, size_t msg_len)
{
    char cls = d->mti[1], fn = d->mti[2];
    struct amount a;
    uint8_t *p;
    if (d->mti[3] != '0' || (cls != '1' && cls != '2' && cls != '4'))
        return;
    if (fn == '0') {
        const char *kind;
        size_t kind_len;
        if (cls == '4') {
            kind = "reversal";
            kind_len = 8;
        } else {
            const struct slot *s = text_slot(d, 3);
            size_t n;
            if (!s)
                return;
            n = slot_text_scrubbed(d, s);
            if (n < 2)
                return;
            if (d->text[0] == '0' && d->text[1] == '0') {
                kind = cls == '1' ? "preauth" : "authorization";
                kind_len = cls == '1' ? 7 : 13;
            } else if (d->text[0] == '2' && d->text[1] == '0') {
                kind = "refund";
                kind_len = 6;
            } else {
                return;
            }
        }
        get_amount(d, &a);
        p = tw_out_room(d->io.out, 160);
        if (!p)
            return;
        p = TW_HEAD(p, "payment.request", 2u + (unsigned)a.has_amount + (unsigned)a.has_currency);
        p = TW_KEY(p, "protocol");
        p = TW_MPW_LIT(p, "iso8583");
        p = TW_KEY(p, "kind");
        p = tw_mpw_str(p, kind, kind_len);
        p = put_amount(p, &a);
        tw_out_commit(d->io.out, p);
        return;
    }
    if (fn != '1')
        return;
    {
        static const struct {
            const char *key;
            unsigned key_len, num;
        } strs1[3] = {{"terminal_id", 11, 41}, {"trace", 5, 11}, {"rrn", 3, 37}},
          strs2[1] = {{"auth_code", 9, 38}}, strs3[2] = {{"date", 4, 13}, {"time", 4, 12}};
        const struct slot *rc = text_slot(d, 39);
        const tw_iso_bin *brand = NULL;
        const char *entry;
        size_t entry_len = 0, i;
        int has_pan, has_aid;
        struct tlv aid;
        unsigned nkeys = 0, approved = 0;
        if (rc) {
            size_t n = slot_text_scrubbed(d, rc);
            approved = n == 2 && d->text[0] == '0' && d->text[1] == '0';
            nkeys += 2;
        }
        get_amount(d, &a);
        nkeys += (unsigned)a.has_amount + (unsigned)a.has_currency;
        has_pan = result_pan(d);
        if (has_pan) {
            nkeys++;
            brand = card_brand(d);
            nkeys += brand != NULL;
        }
        entry = entry_mode(d, &entry_len);
        nkeys += entry != NULL;
        for (i = 0; i < 3; i++)
            nkeys += text_slot(d, strs1[i].num) != NULL;
        nkeys += text_slot(d, 38) != NULL;
        has_aid = find_aid(d, &aid);
        nkeys += (unsigned)has_aid;
        for (i = 0; i < 2; i++)
            nkeys += text_slot(d, strs3[i].num) != NULL;

        p = tw_out_room(d->io.out, 512 + 6 * msg_len);
        if (!p)
            return;
        p = TW_HEAD(p, "payment.result", nkeys);
        if (rc) {
            p = TW_KEY(p, "approved");
            p = tw_mpw_bool(p, (int)approved);
            p = TW_KEY(p, "result_code");
            p = put_str_field(d, p, rc);
        }
        p = put_amount(p, &a);
        if (has_pan) {
            p = TW_KEY(p, "pan");
            p = put_latin1(p, d->pan, d->pan_len, 0);
            if (brand) {
                p = TW_KEY(p, "card");
                p = tw_mpw_str(p, brand->brand, strlen(brand->brand));
            }
        }
        if (entry) {
            p = TW_KEY(p, "entry");
            p = tw_mpw_str(p, entry, entry_len);
        }
        for (i = 0; i < 3; i++) {
            const struct slot *s = text_slot(d, strs1[i].num);
            if (s) {
                p = tw_mpw_str(p, strs1[i].key, strs1[i].key_len);
                p = put_str_field(d, p, s);
            }
        }
        if (text_slot(d, 38)) {
            p = tw_mpw_str(p, strs2[0].key, strs2[0].key_len);
            p = put_str_field(d, p, text_slot(d, 38));
        }
        if (has_aid) {
            size_t k;
            p = TW_KEY(p, "aid");
            memcpy(d->text, aid.value, aid.len);
            tw_card_scrub(d->text, aid.len);
            p = tw_mpw_str_header(p, 2 * aid.len);
            for (k = 0; k < aid.len; k++) {
                *p++ = (uint8_t)HEXU[d->text[k] >> 4];
                *p++ = (uint8_t)HEXU[d->text[k] & 15];
            }
        }
        for (i = 0; i < 2; i++) {
            const struct slot *s = text_slot(d, strs3[i].num);
            if (s) {
                p = tw_mpw_str(p, strs3[i].key, strs3[i].key_len);
                p = put_str_field(d, p, s);
            }
        }
        tw_out_commit(d->io.out, p);
    }
}

/* ------------------------------------------------------------------------------------- one message */

static void write_message(tw_iso8583 *d, const uint8_t *body, size_t blen)
{
    size_t h = d->header < blen ? d->header : blen, i;
    uint32_t nemit = 0, nwithheld;
    uint8_t *p, *q;
    for (i = 0; i < d->nslots; i++)
        nemit += d->slots[i].state == S_EMIT;
    nwithheld = withheld(d, NULL);
    p = tw_out_room(d->io.out, 32 * blen + 8192);
    if (!p)
        return;
    p = TW_HEAD(p, "iso8583.message", d->header ? 4 : 3);
    p = TW_KEY(p, "mti");
    p = tw_mpw_str(p, d->mti, 4);
    p = TW_KEY(p, "fields");
    p = tw_mpw_map(p, nemit);
    for (i = 0; i < d->nslots; i++) {
        const struct slot *s = &d->slots[i];
        if (s->state != S_EMIT)
            continue;
        p = put_num_key(p, s->num);
        p = put_value(d, p, s);
    }
    p = TW_KEY(p, "withheld");
    p = tw_mpw_array(p, nwithheld);
    q = p;
    withheld(d, &q);
    p = q;
    if (d->header) {
        p = TW_KEY(p, "header");
        p = tw_mpw_str_header(p, 2 * h);
        for (i = 0; i < h; i++) {
            *p++ = (uint8_t)HEXL[body[i] >> 4];
            *p++ = (uint8_t)HEXL[body[i] & 15];
        }
    }
    tw_out_commit(d->io.out, p);
}

static int read_length(const tw_iso_field *f, const uint8_t *p, uint32_t *len)
{
    uint32_t v = 0;
    unsigned i;
    switch (f->prefix) {
    case TW_ISO_ASCII:
        for (i = 0; i < f->prefix_width; i++) {
            if (p[i] < '0' || p[i] > '9')
                return -1;
            v = v * 10 + (uint32_t)(p[i] - '0');
        }
        break;
    case TW_ISO_EBCDIC:
        for (i = 0; i < f->prefix_width; i++) {
            if (p[i] < 0xF0 || p[i] > 0xF9)
                return -1;
            v = v * 10 + (uint32_t)(p[i] - 0xF0);
        }
        break;
    case TW_ISO_BCD:
        for (i = 0; i < f->prefix_width; i++) {
            if ((p[i] >> 4) > 9 || (p[i] & 15) > 9)
                return -1;
            v = v * 100 + (uint32_t)(p[i] >> 4) * 10 + (p[i] & 15);
        }
        break;
    default:
        for (i = 0; i < f->prefix_width; i++)
            v = v << 8 | p[i];
        break;
    }
    *len = v;
    return 0;
}

static void decode_message(tw_iso8583 *d, const uint8_t *body, size_t blen, uint64_t off)
{
    size_t h = d->header < blen ? d->header : blen;
    const uint8_t *m = body + h;
    size_t n = blen - h, pos, mlen = d->mti_enc == TW_ISO_BCD ? 2 : 4, i;
    uint8_t bm[16];
    unsigned last = 0, b;
    int fatal = 0;

    d->msg_off = off;
    d->nerrors = 0;
    d->nslots = 0;
    d->hexlen = 0;
    memset(d->slot_of, 0, sizeof(d->slot_of));

    /* MTI */
    if (n < mlen) {
        MSG_ERROR_LIT(d, TW_ERR_BAD_MTI, "mti");
        return;
    }
    for (i = 0; i < 4; i++) {
        uint8_t c = d->mti_enc == TW_ISO_ASCII ? m[i]
                    : d->mti_enc == TW_ISO_EBCDIC ? (uint8_t)(m[i] - 0xC0)
                    : (uint8_t)('0' + NIBBLE(m, i));
        if (c < '0' || c > '9' || (d->mti_enc == TW_ISO_EBCDIC && m[i] < 0xF0)) {
            MSG_ERROR_LIT(d, TW_ERR_BAD_MTI, "mti");
            return;
        }
        d->mti[i] = (char)c;
    }
    pos = mlen;

    /* bitmaps */
    memset(bm, 0, sizeof(bm));
    for (b = 0; b < 2; b++) {
        size_t width = d->bitmap_hex ? 16 : 8;
        if (n - pos < width) {
            MSG_ERROR_LIT(d, TW_ERR_BAD_BITMAP, "bitmap");
            return;
        }
        if (d->bitmap_hex) {
            for (i = 0; i < 8; i++) {
                int hi = hexval(m[pos + 2 * i]), lo = hexval(m[pos + 2 * i + 1]);
                if (hi < 0 || lo < 0) {
                    MSG_ERROR_LIT(d, TW_ERR_BAD_BITMAP, "bitmap");
                    return;
                }
                bm[8 * b + i] = (uint8_t)(hi << 4 | lo);
            }
        } else {
            memcpy(bm + 8 * b, m + pos, 8);
        }
        pos += width;
        if (!(bm[0] & 0x80))
            break;
    }

    /* fields, in one pass over the compiled table */
    for (b = 0; b < 16 && !fatal; b++) {
        unsigned j;
        if (!bm[b])
            continue;
        for (j = 0; j < 8; j++) {
            unsigned num = 8 * b + j + 1;
            const tw_iso_field *f = &d->fields[num];
            struct slot *s;
            uint32_t length, wire;
            if (!(bm[b] & (0x80 >> j)) || num == 1)
                continue;
            if (!(f->flags & TW_ISO_DEFINED)) {
                field_error(d, TW_ERR_UNKNOWN_FIELD, num);
                fatal = 1;
                break;
            }
            if (f->kind) {
                if (n - pos < f->prefix_width || read_length(f, m + pos, &length) != 0 || length > f->max) {
                    field_error(d, TW_ERR_BAD_FIELD_LENGTH, num);
                    fatal = 1;
                    break;
                }
                pos += f->prefix_width;
            } else {
                length = f->max;
            }
            wire = (f->flags & TW_ISO_DIGITS) ? (length + 1) / 2 : length;
            if (n - pos < wire) {
                field_error(d, TW_ERR_FIELD_TRUNCATED, num);
                fatal = 1;
                break;
            }
            s = &d->slots[d->nslots];
            d->slot_of[num] = (uint8_t)(d->nslots + 1);
            d->nslots++;
            s->num = (uint8_t)num;
            s->data = m + pos;
            s->n = wire;
            s->length = (uint16_t)length;
            s->state = S_EMIT;
            pos += wire;
            last = num;
            if (num == 14 || num == 52 || (is_card_field(num) && f->data > TW_ISO_BCD)) {
                s->state = S_WITHHELD;
                continue;
            }
            if (f->data == TW_ISO_HEX) {
                uint8_t *dst = d->hexbuf + d->hexlen;
                uint32_t k;
                int bad = wire % 2 != 0;
                for (k = 0; !bad && k < wire / 2; k++) {
                    int hi = hexval(s->data[2 * k]), lo = hexval(s->data[2 * k + 1]);
                    if (hi < 0 || lo < 0)
                        bad = 1;
                    else
                        dst[k] = (uint8_t)(hi << 4 | lo);
                }
                if (bad) {
                    field_error(d, TW_ERR_BAD_FIELD_DATA, num);
                    s->state = S_DROPPED;
                    continue;
                }
                s->data = dst;
                s->n = wire / 2;
                d->hexlen += wire / 2;
            }
            if (f->flags & TW_ISO_TLV) {
                uint32_t top = 0, held = 0;
                if (tlv_check(s->data, s->n, 1, d->tag_keys, &top, &held) != 0) {
                    field_error(d, TW_ERR_BAD_TLV, num);
                    s->state = S_DROPPED;
                } else {
                    s->tlv_top = (uint16_t)top;
                    s->tlv_held = (uint16_t)held;
                }
            }
        }
    }
    if (!fatal && pos < n) {
        if (last)
            field_error(d, TW_ERR_EXTRA_DATA, last);
        else
            MSG_ERROR_LIT(d, TW_ERR_EXTRA_DATA, "bitmap");
    }
    if (d->nerrors && d->strict)
        return;
    write_message(d, body, blen);
    emit_semantic(d, blen);
}

/* ------------------------------------------------------------------------------------------------ API */

static void on_frame(void *ctx, const tw_lf_result *r)
{
    tw_iso8583 *d = ctx;
    decode_message(d, r->frame, r->frame_len, r->offset);
}

int tw_iso8583_feed(tw_iso8583 *d, const uint8_t *data, size_t len, tw_out *out)
{
    return tw_lenframe_run_feed(&d->f, &d->io, data, len, out, on_frame, d);
}

int tw_iso8583_close(tw_iso8583 *d, tw_out *out)
{
    return tw_lenframe_run_close(&d->f, &d->io, out, on_frame, d);
}
