/* Customer pole display decoder (CD5220 and Epson DM-D / ESC/POS display mode): docs/protocols/display.md is the
 * contract.
 *
 * A display model keeps the visible columns x rows character grid, the cursor and the screen mode, and decodes
 * the display's commands one byte at a time, so any chunking of the stream gives the same events. It emits
 * display.text {lines} at the end of each burst (contract section 4), display.control {setting, value} and
 * protocol.error. The model is also embedded in the ESC/POS decoder (bytes routed to a display by ESC = n).
 * tw_display_new() allocates the whole state once; nothing grows with the stream.
 */
#ifndef TW_DISPLAY_H
#define TW_DISPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

#define TW_DISPLAY_EPSON 1
#define TW_DISPLAY_CD5220 2

#ifndef TW_DISPLAY_TYPES_DEFINED
#define TW_DISPLAY_TYPES_DEFINED
typedef struct tw_display tw_display;
typedef struct tw_display_model tw_display_model;

/* The code tables are a printer profile's (protocols/escpos/profiles.py, as in tw_escpos_config); the decoder
 * keeps the pointers, so they must outlive it. */
typedef struct tw_display_config {
    int dialect;                   /* TW_DISPLAY_EPSON or TW_DISPLAY_CD5220 */
    uint32_t columns;              /* 1 .. TW_MAX_DISPLAY_COLUMNS */
    uint32_t rows;                 /* 1 .. TW_MAX_DISPLAY_ROWS */
    const int16_t *codepage_index; /* 256 */
    const uint16_t *codepages;     /* n_codepages * 128 code points for bytes 0x80..0xFF */
    uint32_t n_codepages;
    const int16_t *charset_index;  /* 256 */
    const uint16_t *charsets;      /* n_charsets * 128 code points for bytes 0x00..0x7F */
    uint32_t n_charsets;
    uint32_t default_codepage;
    uint32_t default_charset;
} tw_display_config;

/* One command table entry (protocols/display/tables.py COMMANDS). */
typedef struct tw_display_command {
    uint8_t dialects; /* TW_DISPLAY_EPSON | TW_DISPLAY_CD5220 */
    uint8_t len;      /* command bytes, 1..3 */
    uint8_t bytes[3];
    uint8_t params;
    uint8_t action;
    uint8_t arg;
} tw_display_command;
#endif

/* the standalone decoder */
tw_display *tw_display_new(const tw_display_config *cfg);
void tw_display_free(tw_display *d);
int tw_display_feed(tw_display *d, const uint8_t *data, size_t len, tw_out *out);
int tw_display_tick(tw_display *d, int64_t now_ns, tw_out *out);
int tw_display_close(tw_display *d, tw_out *out);
const tw_display_command *tw_display_command_table(unsigned *n);

/* the model, for decoders that embed one (NULL: out of memory or an invalid config) */
tw_display_model *tw_display_model_new(const tw_display_config *cfg);
void tw_display_model_free(tw_display_model *m);
/* data[0..len) starts at stream offset base */
void tw_display_model_feed(tw_display_model *m, const uint8_t *data, size_t len, uint64_t base, tw_out *out);
/* ends the burst (display.text if the grid changed since the last one) */
void tw_display_model_settle(tw_display_model *m, tw_out *out);
/* truncated for an unfinished command, then settle */
void tw_display_model_close(tw_display_model *m, tw_out *out);

#endif
