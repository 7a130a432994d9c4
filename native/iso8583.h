/* ISO 8583 decoder: docs/protocols/iso8583.md is the contract.
 *
 * A spec (protocols/iso8583/specs/, JSON) is validated and compiled in Python into a flat table of 129 fields
 * (index = field number) that tw_iso8583_new() checks again and copies. The length framer (lenframe.h) cuts the
 * stream into messages; each message is decoded in one pass over the compiled table into a fixed array of field
 * slots (no allocation per message or field), then written as msgpack with room reserved once per message.
 */
#ifndef TW_ISO8583_H
#define TW_ISO8583_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* tw_iso_field.flags */
#define TW_ISO_DEFINED 1
#define TW_ISO_DIGITS 2    /* bcd: length counts digits */
#define TW_ISO_PAD_RIGHT 4 /* bcd, odd digit count: the pad nibble is the last one */
#define TW_ISO_TLV 8       /* binary or hex data holding BER-TLV */

/* encodings (protocols/iso8583/spec.py) */
#define TW_ISO_ASCII 0
#define TW_ISO_EBCDIC 1
#define TW_ISO_BCD 2
#define TW_ISO_BINARY 3 /* prefix and data */
#define TW_ISO_HEX 4    /* data only */

#ifndef TW_ISO8583_TYPES_DEFINED
#define TW_ISO8583_TYPES_DEFINED
typedef struct tw_iso8583 tw_iso8583;

typedef struct tw_iso_field {
    uint16_t max;         /* the fixed length, or the largest variable one (digits for TW_ISO_DIGITS) */
    uint8_t kind;         /* 0 fixed, 1..4 = L, LL, LLL, LLLL */
    uint8_t prefix;       /* TW_ISO_ASCII, _EBCDIC, _BCD or _BINARY */
    uint8_t prefix_width; /* bytes of the length prefix */
    uint8_t data;         /* TW_ISO_ASCII .. TW_ISO_HEX */
    uint8_t flags;
} tw_iso_field;

typedef struct tw_iso_bin {
    uint32_t lo, hi;      /* the PAN's first `digits` digits, as a number, in [lo, hi] */
    uint8_t digits;       /* 1..6 */
    char brand[15];       /* NUL-terminated */
} tw_iso_bin;

typedef struct tw_iso_config {
    int mti;              /* TW_ISO_ASCII, _EBCDIC or _BCD */
    int bitmap_hex;
    const tw_iso_field *fields; /* 129 entries, index = field number (0 and 1 unused) */
    int framing;          /* TW_LF_* (lenframe.h) */
    unsigned header;
    int strict;
    const tw_iso_bin *bins;
    uint32_t n_bins;
} tw_iso_config;
#endif

/* TW_OK, or TW_ERR_BAD_CONFIG when the table or an option is out of its documented range. */
int tw_iso8583_check_config(const tw_iso_config *cfg);
/* NULL when out of memory or for a bad configuration. */
tw_iso8583 *tw_iso8583_new(const tw_iso_config *cfg);
void tw_iso8583_free(tw_iso8583 *d);
int tw_iso8583_feed(tw_iso8583 *d, const uint8_t *data, size_t len, tw_out *out);
int tw_iso8583_close(tw_iso8583 *d, tw_out *out);

/* cp500 (EBCDIC) to Latin-1, for the test that compares it with Python's codec */
extern const uint8_t tw_cp500_to_latin1[256];

#endif
