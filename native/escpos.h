/* ESC/POS decoder, both directions: docs/protocols/escpos.md is the contract.
 *
 * One decoder per byte stream. tw_escpos_new() allocates all fixed state once; afterwards only the image
 * buffers grow (up to TW_MAX_IMAGE_BYTES each). feed() accepts any split of the stream: only an incomplete
 * command header (at most TW_ESCPOS_MAX_HEADER bytes) is held back between calls, payloads are consumed as they
 * arrive. Events are appended to the caller's tw_out as concatenated msgpack maps {"type", "data"}.
 */
#ifndef TW_ESCPOS_H
#define TW_ESCPOS_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

#define TW_ESCPOS_TO_DEVICE 0
#define TW_ESCPOS_FROM_DEVICE 1
/* drawer_open_level: which level of drawer kick connector pin 3 means "open" (escpos.md section 9) */
#define TW_ESCPOS_DRAWER_HIGH 0
#define TW_ESCPOS_DRAWER_LOW 1

/* The longest header: ESC ( A keeps its first 32 payload bytes (the buzzer parameters) with the 5 fixed ones. */
#define TW_ESCPOS_MAX_HEADER 37

#ifndef TW_ESCPOS_TYPES_DEFINED
#define TW_ESCPOS_TYPES_DEFINED
typedef struct tw_escpos tw_escpos;

/* Printer profile tables (protocols/escpos/profiles.py builds them). The decoder keeps these pointers, it does
 * not copy the tables: they must outlive the decoder. */
typedef struct tw_escpos_config {
    int direction;                 /* TW_ESCPOS_TO_DEVICE or TW_ESCPOS_FROM_DEVICE */
    int images;                    /* non-zero: image events carry their bits */
    const int16_t *codepage_index; /* 256: slot in codepages that ESC t n selects, or -1 */
    const uint16_t *codepages;     /* n_codepages * 128 code points for bytes 0x80..0xFF */
    uint32_t n_codepages;
    const int16_t *charset_index;  /* 256: slot in charsets that ESC R n selects, or -1 */
    const uint16_t *charsets;      /* n_charsets * 128 code points for bytes 0x00..0x7F */
    uint32_t n_charsets;
    uint32_t default_codepage;     /* the n of ESC t that ESC @ restores */
    uint32_t default_charset;      /* the n of ESC R that ESC @ restores */
    const uint16_t *kanji_single;  /* 128: Kanji-mode code point of bytes 0x80..0xFF, 0 for a lead byte */
    const uint16_t *kanji_double;  /* 128 * 256: (lead - 0x80) * 256 + trail -> code point, 0 = none */
    int drawer_open_level;         /* TW_ESCPOS_DRAWER_HIGH or _LOW: the pin 3 level that means open */
} tw_escpos_config;
#endif

/* NULL when out of memory or when cfg is invalid (a NULL table, an index outside its table, bad direction). */
/* TW_OK, or TW_ERR_BAD_CONFIG when the tables or defaults are inconsistent (tw_escpos_new() then returns NULL). */
int tw_escpos_check_config(const tw_escpos_config *cfg);
tw_escpos *tw_escpos_new(const tw_escpos_config *cfg);
void tw_escpos_free(tw_escpos *d);

/* TW_OK, TW_ERR_NOMEM (sticky: the decoder is unusable afterwards) or TW_ERR_CLOSED. */
int tw_escpos_feed(tw_escpos *d, const uint8_t *data, size_t len, tw_out *out);
/* End of stream: reports a truncated command and flushes what is pending. Further use gives TW_ERR_CLOSED. */
int tw_escpos_close(tw_escpos *d, tw_out *out);

/* The request kind named like a printer.status_request "kind" ("printer", "drawer", "id", ...); a name the
 * reply decoder never matches still gets a number, so it takes its place in the request queue. */
int tw_escpos_request_kind(const char *name);
/* from_device: the till sent a request; replies are matched to the oldest fitting one (allowed after close(),
 * where it has no effect on output). */
int tw_escpos_note_request(tw_escpos *d, int kind, int64_t n);

#endif
