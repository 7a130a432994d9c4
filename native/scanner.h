/* Barcode scanner decoder: docs/protocols/scanner.md is the contract.
 *
 * One decoder per byte stream from a scanner. Serial (RS-232 or a keyboard-wedge capture): labels framed by an
 * optional prefix and a suffix byte, or, with suffix none, by an inter-character gap seen through
 * tw_scanner_tick(). HID-POS (hid = 1): 64-byte input reports, report id first, reassembled into labels. Every
 * label goes through one label decoder (MSR track shapes, AIM identifiers, EAN/UPC check digits, UPC-E
 * expansion, GS1 element strings) and leaves as scanner.data or msr.swipe; labels are scrubbed by the card rules
 * unless validated as a product code (section 6). tw_scanner_new() allocates the whole state once; nothing grows
 * with the stream. Events are appended to the caller's tw_out as concatenated msgpack maps {"type", "data"}.
 */
#ifndef TW_SCANNER_H
#define TW_SCANNER_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* suffix */
#define TW_SCAN_SUFFIX_CR 0
#define TW_SCAN_SUFFIX_CRLF 1
#define TW_SCAN_SUFFIX_LF 2
#define TW_SCAN_SUFFIX_TAB 3
#define TW_SCAN_SUFFIX_NONE 4
/* aim */
#define TW_SCAN_AIM_AUTO 0
#define TW_SCAN_AIM_ON 1
#define TW_SCAN_AIM_OFF 2
/* GS1 AI kinds */
#define TW_SCAN_AI_PLAIN 0
#define TW_SCAN_AI_DEC 1     /* also an integer with n decimals (n = the AI's last digit) */
#define TW_SCAN_AI_CUR_DEC 2 /* three currency digits, then an amount with n decimals */

#ifndef TW_SCANNER_TYPES_DEFINED
#define TW_SCANNER_TYPES_DEFINED
typedef struct tw_scanner tw_scanner;

typedef struct tw_scanner_config {
    int hid;
    int suffix;
    int gap_ms;
    int aim;
    uint8_t prefix[8]; /* TW_MAX_SCAN_PREFIX */
    uint32_t prefix_len;
} tw_scanner_config;

/* one AIM table entry: code char, modifier char ('\0' = any other modifier) */
typedef struct tw_scanner_aim {
    char code;
    char mod;
    const char *name;
    int upos;
    int gs1;
} tw_scanner_aim;

/* one GS1 AI entry: digits ("390n": four digits, the last any; "310d": the last 0..5), fixed length
 * (0 = variable), max length, charset 'N' or 'X', kind */
typedef struct tw_scanner_ai {
    const char *ai;
    uint8_t fixed;
    uint8_t max;
    char charset;
    uint8_t kind;
} tw_scanner_ai;
#endif

tw_scanner *tw_scanner_new(const tw_scanner_config *cfg);
void tw_scanner_free(tw_scanner *d);
int tw_scanner_feed(tw_scanner *d, const uint8_t *data, size_t len, tw_out *out);
int tw_scanner_tick(tw_scanner *d, int64_t now_ns, tw_out *out);
int tw_scanner_close(tw_scanner *d, tw_out *out);
/* One complete label (serial: prefix included, suffix excluded) through the label decoder, as if it had been framed
 * at stream offset `offset`: scanner.data / msr.swipe and their errors go to `out`. For decoders that carry
 * scanner labels inside another framing (magellan, docs/protocols/scale.md section 6). Returns the tw_out status. */
int tw_scanner_label(tw_scanner *d, const uint8_t *label, size_t n, uint64_t offset, tw_out *out);
/* the tables, for the test that compares them with protocols/scanner/tables.py */
const tw_scanner_aim *tw_scanner_aim_table(unsigned *n);
const tw_scanner_ai *tw_scanner_ai_table(unsigned *n);

#endif
