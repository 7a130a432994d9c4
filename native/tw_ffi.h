/* The C API as Python sees it (protocols._native, built by native/build_ffi.py).
 *
 * build_ffi.py hands this file to cffi's cdef() with every preprocessor line removed, so below the includes
 * there are only plain declarations. For the compiler, the includes bring in the real definitions first and the
 * guarded copies here are skipped; cffi checks the copies' layout against the real structs when it compiles the
 * module, and the compiler checks that the repeated prototypes agree with the originals.
 */
#ifndef TW_FFI_H
#define TW_FFI_H

#include <stddef.h>
#include <stdint.h>

#include "escpos.h"
#include "tw_card.h"
#include "tw_crc.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "zvt_link.h"
#include "ecr.h"
#include "lenframe.h"
#include "iso8583.h"
#include "scanner.h"
#include "msr.h"
#include "scale.h"
#include "display.h"

/* ---- output buffer (tw_msgpack.h) */
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
void tw_out_reset(tw_out *o);
void tw_out_trim(tw_out *o, size_t max_cap);

/* checked msgpack writers (tw_msgpack.h): for slow paths of decoders, and tested against msgpack-python */
void tw_mp_nil(tw_out *o);
void tw_mp_bool(tw_out *o, int v);
void tw_mp_uint(tw_out *o, uint64_t v);
void tw_mp_int(tw_out *o, int64_t v);
void tw_mp_map(tw_out *o, uint32_t n);
void tw_mp_array(tw_out *o, uint32_t n);
void tw_mp_str(tw_out *o, const char *s, size_t len);
void tw_mp_bin(tw_out *o, const uint8_t *b, size_t len);

/* ---- error codes (tw_errors.h) */
const char *tw_error_name(int code);
const char *tw_error_reason(int code);
int tw_error_count(void);

/* ---- ESC/POS (escpos.h) */
#ifndef TW_ESCPOS_TYPES_DEFINED
#define TW_ESCPOS_TYPES_DEFINED
typedef struct tw_escpos tw_escpos;

typedef struct tw_escpos_config {
    int direction;
    int images;
    const int16_t *codepage_index;
    const uint16_t *codepages;
    uint32_t n_codepages;
    const int16_t *charset_index;
    const uint16_t *charsets;
    uint32_t n_charsets;
    uint32_t default_codepage;
    uint32_t default_charset;
    const uint16_t *kanji_single;
    const uint16_t *kanji_double;
    int drawer_open_level;
} tw_escpos_config;
#endif

int tw_escpos_check_config(const tw_escpos_config *cfg);
tw_escpos *tw_escpos_new(const tw_escpos_config *cfg);
void tw_escpos_free(tw_escpos *d);
int tw_escpos_feed(tw_escpos *d, const uint8_t *data, size_t len, tw_out *out);
int tw_escpos_close(tw_escpos *d, tw_out *out);
int tw_escpos_request_kind(const char *name);
int tw_escpos_note_request(tw_escpos *d, int kind, int64_t n);

/* ---- checksums (tw_crc.h): incremental, start from 0 */
uint16_t tw_crc16_kermit(uint16_t crc, const uint8_t *p, size_t n);
uint16_t tw_crc16_xmodem(uint16_t crc, const uint8_t *p, size_t n);
uint8_t tw_lrc_xor(uint8_t lrc, const uint8_t *p, size_t n);
uint8_t tw_sum8(uint8_t sum, const uint8_t *p, size_t n);

/* ---- card data masking (tw_card.h) */
void tw_card_mask_pan(const uint8_t *pan, size_t n, uint8_t *dst);
void tw_card_scrub(uint8_t *s, size_t n);
void tw_mp_str_scrubbed(tw_out *o, const uint8_t *s, size_t n);
void tw_mp_pan(tw_out *o, const uint8_t *pan, size_t n);
void tw_mp_str_display_scrubbed(tw_out *o, const uint8_t *s, size_t n);

/* ---- ZVT link layer + APDU layer (zvt_link.h, zvt_apdu.h); framing 0 = serial, 1 = tcp; strict 0/1 */
#ifndef TW_ZVT_LINK_TYPES_DEFINED
#define TW_ZVT_LINK_TYPES_DEFINED
typedef struct tw_zvt_link tw_zvt_link;
#endif

tw_zvt_link *tw_zvt_link_new(int framing, int strict);
void tw_zvt_link_free(tw_zvt_link *d);
int tw_zvt_link_feed(tw_zvt_link *d, const uint8_t *data, size_t len, tw_out *out);
int tw_zvt_link_close(tw_zvt_link *d, tw_out *out);

/* ---- generic STX/ETX ECR link (ecr.h); TW_ECR_NONE = -1 marks an absent optional byte */
#ifndef TW_ECR_TYPES_DEFINED
#define TW_ECR_TYPES_DEFINED
typedef struct tw_ecr tw_ecr;

typedef struct tw_ecr_item {
    const char *key;
    uint32_t key_len;
    int type;
    int32_t field;
    int32_t sub;
    uint32_t start;
    uint32_t end;
    const char *value;
    uint32_t value_len;
} tw_ecr_item;

typedef struct tw_ecr_message {
    const char *code;
    uint32_t code_len;
    int32_t code_field;
    uint32_t length;
    int32_t where_at;
    const char *where;
    uint32_t where_len;
    const char *event;
    uint32_t event_len;
    const tw_ecr_item *items;
    uint32_t n_items;
} tw_ecr_message;

typedef struct tw_ecr_config {
    int stx, etx;
    int checksum;
    int crc_big_endian;
    int include_stx, include_etx;
    uint32_t seed;
    int fs, us;
    int ack, nak, enq, eot;
    uint32_t max_frame;
    int strict;
    const char *dialect;
    uint32_t dialect_len;
    int match;
    const tw_ecr_message *messages;
    uint32_t n_messages;
} tw_ecr_config;
#endif

int tw_ecr_check_config(const tw_ecr_config *cfg);
tw_ecr *tw_ecr_new(const tw_ecr_config *cfg);
void tw_ecr_free(tw_ecr *d);
int tw_ecr_feed(tw_ecr *d, const uint8_t *data, size_t len, tw_out *out);
int tw_ecr_close(tw_ecr *d, tw_out *out);

/* ---- length framing (lenframe.h); framing codes as protocols/iso8583/tables.py FRAMINGS */
#ifndef TW_LENFRAME_TYPES_DEFINED
#define TW_LENFRAME_TYPES_DEFINED
typedef struct tw_lenframe_dec tw_lenframe_dec;
#endif

tw_lenframe_dec *tw_lenframe_new(int framing, unsigned header);
void tw_lenframe_free(tw_lenframe_dec *d);
int tw_lenframe_feed(tw_lenframe_dec *d, const uint8_t *data, size_t len, tw_out *out);
int tw_lenframe_close(tw_lenframe_dec *d, tw_out *out);

/* ---- ISO 8583 (iso8583.h) */
#ifndef TW_ISO8583_TYPES_DEFINED
#define TW_ISO8583_TYPES_DEFINED
typedef struct tw_iso8583 tw_iso8583;

typedef struct tw_iso_field {
    uint16_t max;
    uint8_t kind;
    uint8_t prefix;
    uint8_t prefix_width;
    uint8_t data;
    uint8_t flags;
} tw_iso_field;

typedef struct tw_iso_bin {
    uint32_t lo, hi;
    uint8_t digits;
    char brand[15];
} tw_iso_bin;

typedef struct tw_iso_config {
    int mti;
    int bitmap_hex;
    const tw_iso_field *fields;
    int framing;
    unsigned header;
    int strict;
    const tw_iso_bin *bins;
    uint32_t n_bins;
} tw_iso_config;
#endif

int tw_iso8583_check_config(const tw_iso_config *cfg);
tw_iso8583 *tw_iso8583_new(const tw_iso_config *cfg);
void tw_iso8583_free(tw_iso8583 *d);
int tw_iso8583_feed(tw_iso8583 *d, const uint8_t *data, size_t len, tw_out *out);
int tw_iso8583_close(tw_iso8583 *d, tw_out *out);
extern const uint8_t tw_cp500_to_latin1[256];

/* ---- barcode scanner (scanner.h) */
#ifndef TW_SCANNER_TYPES_DEFINED
#define TW_SCANNER_TYPES_DEFINED
typedef struct tw_scanner tw_scanner;

typedef struct tw_scanner_config {
    int hid;
    int suffix;
    int gap_ms;
    int aim;
    uint8_t prefix[8];
    uint32_t prefix_len;
} tw_scanner_config;

typedef struct tw_scanner_aim {
    char code;
    char mod;
    const char *name;
    int upos;
    int gs1;
} tw_scanner_aim;

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
const tw_scanner_aim *tw_scanner_aim_table(unsigned *n);
const tw_scanner_ai *tw_scanner_ai_table(unsigned *n);

/* ---- magnetic stripe readers (msr.h) */
#ifndef TW_MSR_TYPES_DEFINED
#define TW_MSR_TYPES_DEFINED
typedef struct tw_msr tw_msr;

typedef struct tw_msr_config {
    int separator;
    int lrc;
    unsigned tracks;
    int gap_ms;
} tw_msr_config;
#endif

tw_msr *tw_msr_new(const tw_msr_config *cfg);
void tw_msr_free(tw_msr *d);
int tw_msr_feed(tw_msr *d, const uint8_t *data, size_t len, tw_out *out);
int tw_msr_tick(tw_msr *d, int64_t now_ns, tw_out *out);
int tw_msr_close(tw_msr *d, tw_out *out);

/* ---- scales (scale.h) */
#ifndef TW_SCALE_TYPES_DEFINED
#define TW_SCALE_TYPES_DEFINED
typedef struct tw_scale tw_scale;

typedef struct tw_scale_config {
    int protocol;
    int from_device;
    int unit;
} tw_scale_config;

typedef struct tw_scale_command {
    int protocol;
    const char *command;
    const char *name;
} tw_scale_command;
#endif

tw_scale *tw_scale_new(const tw_scale_config *cfg);
void tw_scale_free(tw_scale *d);
int tw_scale_feed(tw_scale *d, const uint8_t *data, size_t len, tw_out *out);
int tw_scale_close(tw_scale *d, tw_out *out);
const tw_scale_command *tw_scale_command_table(unsigned *n);

/* ---- customer displays (display.h) */
#ifndef TW_DISPLAY_TYPES_DEFINED
#define TW_DISPLAY_TYPES_DEFINED
typedef struct tw_display tw_display;
typedef struct tw_display_model tw_display_model;

typedef struct tw_display_config {
    int dialect;
    uint32_t columns;
    uint32_t rows;
    const int16_t *codepage_index;
    const uint16_t *codepages;
    uint32_t n_codepages;
    const int16_t *charset_index;
    const uint16_t *charsets;
    uint32_t n_charsets;
    uint32_t default_codepage;
    uint32_t default_charset;
} tw_display_config;

typedef struct tw_display_command {
    uint8_t dialects;
    uint8_t len;
    uint8_t bytes[3];
    uint8_t params;
    uint8_t action;
    uint8_t arg;
} tw_display_command;
#endif

tw_display *tw_display_new(const tw_display_config *cfg);
void tw_display_free(tw_display *d);
int tw_display_feed(tw_display *d, const uint8_t *data, size_t len, tw_out *out);
int tw_display_tick(tw_display *d, int64_t now_ns, tw_out *out);
int tw_display_close(tw_display *d, tw_out *out);
const tw_display_command *tw_display_command_table(unsigned *n);

#endif
