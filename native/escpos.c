/* ESC/POS decoder (docs/protocols/escpos.md). Section numbers in comments refer to that page.
 *
 * to_device: in the ground state one token starts at each byte: a run of text, one control byte, or a command.
 * A command's header (its fixed bytes, plus the few payload bytes that decide what it does) is looked up in the
 * tables below and acted on straight from the input; only a header cut by the end of a feed() is copied aside
 * (`hold`). A command with a payload installs a continuation (`cont`) that consumes the payload as it arrives.
 *
 * from_device: printer replies are short; they are matched byte by byte (section 9).
 */
#include "escpos.h"

#include <stdlib.h>
#include <string.h>

#include "display.h"
#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_sha256.h"

#define ESC 0x1b
#define GS 0x1d
#define FS 0x1c
#define DLE 0x10

#define REPLACEMENT 0xfffd
#define N_CODE2D 5

/* ------------------------------------------------------------------------------------------------ style */

/* A character's style packed in 16 bits; 0 is plain (all off, font A, width = height = 1). */
#define ST_BOLD 0x0001u
#define ST_UNDERLINE_SHIFT 1 /* 2 bits: 0, 1, 2 */
#define ST_UNDERLINE_MASK (3u << ST_UNDERLINE_SHIFT)
#define ST_DOUBLE_STRIKE 0x0008u
#define ST_INVERT 0x0010u
#define ST_FONT_SHIFT 5 /* 3 bits: index into font_names */
#define ST_FONT_MASK (7u << ST_FONT_SHIFT)
#define ST_WIDTH_SHIFT 8 /* 3 bits: width - 1 */
#define ST_WIDTH_MASK (7u << ST_WIDTH_SHIFT)
#define ST_HEIGHT_SHIFT 11 /* 3 bits: height - 1 */
#define ST_HEIGHT_MASK (7u << ST_HEIGHT_SHIFT)
#define ST_UPSIDE_DOWN 0x4000u
#define ST_ROTATE 0x8000u

/* A string with its length, for names written into events. */
struct name {
    const char *s;
    size_t len;
};
#define NAME(lit) {lit, sizeof(lit) - 1}

static const struct name font_names[] = {NAME("A"), NAME("B"), NAME("C"), NAME("D"), NAME("E"),
                                         NAME("special-A"), NAME("special-B")};

/* ESC M n -> font index + 1 (0 = not a font) */
static uint8_t font_of(uint8_t n)
{
    if (n <= 4)
        return (uint8_t)(n + 1);
    if (n >= 48 && n <= 52)
        return (uint8_t)(n - 48 + 1);
    if (n == 97)
        return 6;
    if (n == 98)
        return 7;
    return 0;
}

/* ------------------------------------------------------------------------------------------ value tables */

enum align { ALIGN_LEFT, ALIGN_CENTER, ALIGN_RIGHT };
static const struct name align_names[] = {NAME("left"), NAME("center"), NAME("right")};

/* ESC a n -> align + 1 (0 = bad parameter) */
static int align_of(uint8_t n)
{
    if (n == 0 || n == 48)
        return ALIGN_LEFT + 1;
    if (n == 1 || n == 49)
        return ALIGN_CENTER + 1;
    if (n == 2 || n == 50)
        return ALIGN_RIGHT + 1;
    return 0;
}

/* ESC p m -> pin (0 = bad parameter) */
static int kick_pin(uint8_t m)
{
    if (m == 0 || m == 48)
        return 2;
    if (m == 1 || m == 49)
        return 5;
    return 0;
}

/* ESC * m -> bytes per column (0 = bad parameter) */
static unsigned bitimage_column_bytes(uint8_t m)
{
    if (m == 0 || m == 1)
        return 1;
    if (m == 32 || m == 33)
        return 3;
    return 0;
}

/* GS V m -> 1 full cut, 2 partial cut, 0 bad parameter; *with_feed when a feed byte n follows */
static int cut_mode(uint8_t m, int *with_feed)
{
    *with_feed = 0;
    switch (m) {
    case 0: case 48: return 1;
    case 1: case 49: return 2;
    case 65: case 97: case 103: *with_feed = 1; return 1;
    case 66: case 98: case 104: *with_feed = 1; return 2;
    default: return 0;
    }
}

/* GS ( k cn -> slot (-1: not a symbology we store) */
static int code2d_slot_of(uint8_t cn)
{
    switch (cn) {
    case 0x30: return 0;
    case 0x31: return 1;
    case 0x32: return 2;
    case 0x35: return 3;
    case 0x36: return 4;
    default: return -1;
    }
}
static const struct name code2d_names[N_CODE2D] = {NAME("PDF417"), NAME("QR"), NAME("MAXICODE"), NAME("AZTEC"),
                                                   NAME("DATAMATRIX")};

/* GS k m -> symbology; m 0-6 function A, 65-79 function B (the caller has checked m) */
static struct name barcode_name(uint8_t m)
{
    static const struct name names[] = {
        NAME("UPCA"), NAME("UPCE"), NAME("EAN13"), NAME("EAN8"), NAME("CODE39"), NAME("ITF"), NAME("CODABAR"),
        NAME("CODE93"), NAME("CODE128"), NAME("GS1-128"), NAME("GS1-DATABAR-OMNI"), NAME("GS1-DATABAR-TRUNCATED"),
        NAME("GS1-DATABAR-LIMITED"), NAME("GS1-DATABAR-EXPANDED"), NAME("CODE128"),
    };
    return names[m <= 6 ? m : m - 65];
}

/* Function A (m 0-6) data bytes: digits, except CODE39 (m 4) and CODABAR (m 6) (section 5). */
static int barcode_a_allows(uint8_t m, uint8_t b)
{
    if (m == 4)
        return b == 0x20 || b == 0x24 || b == 0x25 || b == 0x2a || b == 0x2b || (b >= 0x2d && b <= 0x39) ||
               (b >= 0x41 && b <= 0x5a);
    if (m == 6)
        return b == 0x24 || b == 0x2b || (b >= 0x2d && b <= 0x3a) || (b >= 0x41 && b <= 0x44) ||
               (b >= 0x61 && b <= 0x64);
    return b >= 0x30 && b <= 0x39;
}

/* ------------------------------------------------------------------------------------- request kinds */

/* Kinds of printer.status_request, as the reply decoder knows them (section 9). */
enum request_kind {
    RQ_PRINTER, RQ_OFFLINE, RQ_ERROR, RQ_PAPER, RQ_INK, RQ_PEELER, RQ_INTERFACE, RQ_DRAWER, RQ_PAPER_SENSOR,
    RQ_ID, RQ_ASB, RQ_ASB_INK, RQ_COUNTER, RQ_CODE2D_SIZE, RQ_PROCESS_ID, RQ_REALTIME_ASB, RQ_CLEAR_BUFFER,
    RQ_ASB_EXT, RQ_OTHER, RQ_COUNT
};
static const struct name request_names[RQ_COUNT] = {
    NAME("printer"), NAME("offline"), NAME("error"), NAME("paper"), NAME("ink"), NAME("peeler"), NAME("interface"),
    NAME("drawer"), NAME("paper_sensor"), NAME("id"), NAME("asb"), NAME("asb_ink"), NAME("counter"),
    NAME("code2d_size"), NAME("process_id"), NAME("realtime_asb"), NAME("clear_buffer"), NAME("asb_ext"),
    NAME("other"),
};

/* ------------------------------------------------------------------------------------- command table */

/* How a command's header length is found (tables.header_need in the reference). */
enum rule {
    R_FIXED,      /* `len` bytes */
    R_PAREN,      /* x ( x pL pH + payload head */
    R_BITIMAGE,   /* ESC * m nL nH */
    R_KICK,       /* ESC p m t1 t2 */
    R_CUT,        /* GS V m [n] */
    R_BARCODE,    /* GS k m [n] */
    R_RASTER,     /* GS v 0 / GS Q 0 m xL xH yL yH */
    R_GS8,        /* GS 8 L p1 p2 p3 p4 + payload head */
    R_COUNTER,    /* GS g m fn nL nH */
    R_BMP,        /* GS D 30 fn a kc1 kc2 b c + "BM" + bfSize */
    R_NV_MEMORY,  /* FS g m a1 a2 a3 a4 nL nH */
    R_DLE_EOT,    /* DLE EOT n [x] */
    R_DLE_DC4     /* DLE DC4 fn ... */
};

/* What a command does once its header is complete. */
enum action {
    A_UNKNOWN = 0, A_NOTHING, A_PRINT, A_ESC_MODE, A_BOLD, A_DOUBLE_STRIKE, A_UPSIDE_DOWN, A_UNDERLINE, A_ROTATE,
    A_FONT, A_ALIGN, A_INIT, A_CODE_TABLE, A_CHARSET, A_FEED_LINES, A_FEED_LINES_BACK, A_FEED_DOTS,
    A_FEED_DOTS_BACK, A_PARTIAL_CUT, A_DRAWER_STATUS, A_PAPER_STATUS, A_SELECT_PERIPHERAL, A_ESC_BUZZER, A_KICK,
    A_BITIMAGE, A_TABS, A_USER_CHARS, A_PAREN, A_CHAR_SIZE, A_INVERT, A_PRINT_DOWNLOADED, A_DEFINE_DOWNLOADED,
    A_ID_REQUEST, A_STATUS_REQUEST, A_ASB, A_ASB_INK, A_COUNTER, A_CUT, A_BARCODE, A_RASTER, A_GS8,
    A_KANJI_ON, A_KANJI_OFF, A_NV_PRINT, A_USER_KANJI, A_NV_MEMORY, A_NV_DEFINE, A_DLE_EOT, A_DLE_DC4,
    A_DEFINE_BMP
};

struct command {
    uint8_t rule;
    uint8_t len; /* R_FIXED: total header length */
    uint8_t action;
};

#define FIXED(n, a) {R_FIXED, n, a}
#define RULE(r, a) {r, 0, a}

/* Indexed by the function byte after the prefix; a zero entry is an unknown command (2 bytes). */
static const struct command esc_commands[256] = {
    [0x0c] = FIXED(2, A_PRINT),        [0x20] = FIXED(3, A_NOTHING),         [0x21] = FIXED(3, A_ESC_MODE),
    [0x24] = FIXED(4, A_NOTHING),      [0x25] = FIXED(3, A_NOTHING),         [0x26] = FIXED(5, A_USER_CHARS),
    [0x28] = RULE(R_PAREN, A_PAREN),   [0x2a] = RULE(R_BITIMAGE, A_BITIMAGE), [0x2d] = FIXED(3, A_UNDERLINE),
    [0x32] = FIXED(2, A_NOTHING),      [0x33] = FIXED(3, A_NOTHING),         [0x3c] = FIXED(2, A_NOTHING),
    [0x3d] = FIXED(3, A_SELECT_PERIPHERAL), [0x3f] = FIXED(3, A_NOTHING),    [0x40] = FIXED(2, A_INIT),
    [0x42] = FIXED(4, A_ESC_BUZZER),   [0x44] = FIXED(2, A_TABS),            [0x45] = FIXED(3, A_BOLD),
    [0x47] = FIXED(3, A_DOUBLE_STRIKE), [0x4a] = FIXED(3, A_FEED_DOTS),      [0x4b] = FIXED(3, A_FEED_DOTS_BACK),
    [0x4c] = FIXED(2, A_NOTHING),      [0x4d] = FIXED(3, A_FONT),            [0x52] = FIXED(3, A_CHARSET),
    [0x53] = FIXED(2, A_NOTHING),      [0x54] = FIXED(3, A_NOTHING),         [0x55] = FIXED(3, A_NOTHING),
    [0x56] = FIXED(3, A_ROTATE),       [0x57] = FIXED(10, A_NOTHING),        [0x5c] = FIXED(4, A_NOTHING),
    [0x61] = FIXED(3, A_ALIGN),        [0x63] = FIXED(4, A_NOTHING),         [0x64] = FIXED(3, A_FEED_LINES),
    [0x65] = FIXED(3, A_FEED_LINES_BACK), [0x69] = FIXED(2, A_PARTIAL_CUT),  [0x6d] = FIXED(2, A_PARTIAL_CUT),
    [0x70] = RULE(R_KICK, A_KICK),     [0x72] = FIXED(3, A_NOTHING),         [0x74] = FIXED(3, A_CODE_TABLE),
    [0x75] = FIXED(3, A_DRAWER_STATUS), [0x76] = FIXED(2, A_PAPER_STATUS),   [0x7b] = FIXED(3, A_UPSIDE_DOWN),
};

static const struct command gs_commands[256] = {
    [0x21] = FIXED(3, A_CHAR_SIZE),    [0x23] = FIXED(3, A_NOTHING),         [0x24] = FIXED(4, A_NOTHING),
    [0x28] = RULE(R_PAREN, A_PAREN),   [0x2a] = FIXED(4, A_DEFINE_DOWNLOADED), [0x2f] = FIXED(3, A_PRINT_DOWNLOADED),
    [0x38] = RULE(R_GS8, A_GS8),       [0x3a] = FIXED(2, A_NOTHING),         [0x42] = FIXED(3, A_INVERT),
    [0x44] = RULE(R_BMP, A_DEFINE_BMP),
    [0x48] = FIXED(3, A_NOTHING),      [0x49] = FIXED(3, A_ID_REQUEST),      [0x4c] = FIXED(4, A_NOTHING),
    [0x50] = FIXED(4, A_NOTHING),      [0x51] = RULE(R_RASTER, A_RASTER),    [0x54] = FIXED(3, A_NOTHING),
    [0x56] = RULE(R_CUT, A_CUT),       [0x57] = FIXED(4, A_NOTHING),         [0x5c] = FIXED(4, A_NOTHING),
    [0x5e] = FIXED(5, A_NOTHING),      [0x61] = FIXED(3, A_ASB),             [0x62] = FIXED(3, A_NOTHING),
    [0x63] = FIXED(2, A_NOTHING),      [0x66] = FIXED(3, A_NOTHING),         [0x67] = RULE(R_COUNTER, A_COUNTER),
    [0x68] = FIXED(3, A_NOTHING),      [0x6a] = FIXED(3, A_ASB_INK),         [0x6b] = RULE(R_BARCODE, A_BARCODE),
    [0x72] = FIXED(3, A_STATUS_REQUEST), [0x76] = RULE(R_RASTER, A_RASTER),  [0x77] = FIXED(3, A_NOTHING),
    [0x7a] = FIXED(5, A_NOTHING),
};

static const struct command fs_commands[256] = {
    [0x21] = FIXED(3, A_NOTHING),      [0x26] = FIXED(2, A_KANJI_ON),        [0x28] = RULE(R_PAREN, A_PAREN),
    [0x2d] = FIXED(3, A_NOTHING),      [0x2e] = FIXED(2, A_KANJI_OFF),       [0x32] = FIXED(4, A_USER_KANJI),
    [0x3f] = FIXED(4, A_NOTHING),      [0x43] = FIXED(3, A_NOTHING),         [0x53] = FIXED(4, A_NOTHING),
    [0x57] = FIXED(3, A_NOTHING),      [0x67] = RULE(R_NV_MEMORY, A_NV_MEMORY), [0x70] = FIXED(4, A_NV_PRINT),
    [0x71] = FIXED(3, A_NV_DEFINE),
};

static const struct command dle_commands[256] = {
    [0x04] = RULE(R_DLE_EOT, A_DLE_EOT), [0x05] = FIXED(3, A_NOTHING), [0x14] = RULE(R_DLE_DC4, A_DLE_DC4),
};

static const struct command *commands_of(uint8_t prefix)
{
    switch (prefix) {
    case ESC: return esc_commands;
    case GS: return gs_commands;
    case FS: return fs_commands;
    default: return dle_commands;
    }
}

/* x ( x commands by letter: what the payload means, and how many payload bytes the header keeps. */
enum paren {
    P_UNKNOWN = 0, P_SKIP, P_BUZZER, P_CODE2D, P_GRAPHICS, P_RESPONSE, P_ENCODING, P_ASB_EXT
};

static const uint8_t esc_paren[256] = {[0x41] = P_BUZZER, [0x59] = P_SKIP};
static const uint8_t gs_paren[256] = {
    [0x41] = P_SKIP, [0x43] = P_SKIP, [0x44] = P_SKIP, [0x45] = P_SKIP, [0x48] = P_RESPONSE, [0x4B] = P_SKIP,
    [0x4C] = P_GRAPHICS, [0x4D] = P_SKIP, [0x4E] = P_SKIP, [0x50] = P_SKIP, [0x51] = P_SKIP, [0x6B] = P_CODE2D,
    [0x7A] = P_SKIP,
};
static const uint8_t fs_paren[256] = {[0x41] = P_SKIP, [0x43] = P_ENCODING, [0x45] = P_SKIP, [0x4C] = P_SKIP,
                                      [0x65] = P_ASB_EXT};

static enum paren paren_of(uint8_t prefix, uint8_t letter)
{
    switch (prefix) {
    case ESC: return (enum paren)esc_paren[letter];
    case GS: return (enum paren)gs_paren[letter];
    case FS: return (enum paren)fs_paren[letter];
    default: return P_UNKNOWN;
    }
}

/* ------------------------------------------------------------------------------------- decoder state */

struct buf {
    uint8_t *data;
    size_t len;
    size_t cap;
};

struct run {
    uint16_t start; /* code point index where the run starts */
    uint16_t style;
};

/* The line being printed: text as UTF-8 (every code point is at most U+FFFF, so 3 bytes), runs of style. */
struct line {
    size_t text_len;
    uint32_t ncp;
    uint32_t nruns;
    char text[TW_MAX_LINE_CHARS * 3];
    struct run runs[TW_MAX_LINE_CHARS];
};

struct stored_image {
    int present;
    uint32_t width, height;
    uint8_t digest[TW_SHA256_DIGEST_LEN];
    struct buf rows;
};

struct code2d_slot {
    int present;
    size_t len;
    uint8_t data[TW_MAX_CODE2D];
};

/* An open ESC * bit-image group (section 6). */
struct group {
    int open;
    uint8_t m;
    uint16_t n;
    uint64_t height; /* n = 0 stripes add height without rows, so the 4 MiB split never bounds it */
    size_t rows_len;
    tw_sha256 sha;
    struct buf rows; /* kept only with images */
};

/* Column-format image data (each column top to bottom, MSB = top dot) written into 1 bpp rows as it arrives. */
struct column_writer {
    uint8_t *rows;
    size_t row_bytes;
    uint32_t col_bytes;
    uint32_t col;
    uint32_t k;
};

/* What the bytes after a header are (the continuation). */
enum cont {
    CONT_NONE = 0, CONT_SKIP, CONT_STRIPE, CONT_RASTER, CONT_GRAPHICS_ROWS, CONT_GRAPHICS_COLUMNS, CONT_DOWNLOAD,
    CONT_CODE2D, CONT_BARCODE_A, CONT_BARCODE_B, CONT_TABS, CONT_USER_CHARS, CONT_NV_DEFINE
};

enum reply_state { RP_GROUND = 0, RP_ASB, RP_BLOCK, RP_ASB_EXT, RP_POWER_OFF };

struct request {
    uint8_t kind;
    int64_t n;
};

struct tw_escpos {
    /* profile */
    int to_device;
    int images;
    const int16_t *codepage_index;
    const uint16_t *codepages;
    const int16_t *charset_index;
    const uint16_t *charsets;
    uint32_t default_codepage, default_charset;
    const uint16_t *kanji_single;
    const uint16_t *kanji_double;

    tw_stream io; /* offset, sticky status, and this call's output and input (tw_event.h) */

    /* an incomplete header held back between feeds */
    uint8_t hold[TW_ESCPOS_MAX_HEADER];
    size_t hold_len;
    uint64_t hold_off;

    /* printer state (reset by ESC @) */
    uint16_t style;
    uint8_t align;
    int kanji;
    int deselected;
    int display_on;           /* ESC = n selected the customer display: deselected bytes go to `display` */
    tw_display_model *display; /* the daisy-chained Epson DM-D display (section 7); to_device only */
    const uint16_t *codepage;
    const uint16_t *charset;
    int charset_is_ascii;     /* the charset maps 0x20..0x7f to themselves: the text fast path applies */
    uint8_t charset_ascii[256]; /* the same, for the set each ESC R n selects */
    int lead_pending;         /* a Kanji lead byte waits for its trail byte */
    uint8_t lead;
    uint64_t lead_off;
    struct group group;
    int group_in_line;        /* the pending line holds a stripe of the open group */
    struct stored_image graphics;   /* GS ( L / GS 8 L fn 0x70/0x71, printed by fn 0x32 */
    struct stored_image downloaded; /* GS *, printed by GS / */
    struct code2d_slot code2d[N_CODE2D];

    /* the command whose payload is being consumed */
    enum cont cont;
    uint64_t remaining;       /* payload bytes still to come */
    uint64_t cmd_off;
    uint8_t cmd_hdr[TW_MAX_ERROR_RAW];
    size_t cmd_hdr_len;
    struct column_writer columns;
    tw_sha256 sha;            /* raster and stored-graphics rows */
    struct buf raster;        /* GS v 0 rows, kept only with images */
    struct buf stripe;        /* rows of the ESC * stripe being received */
    uint8_t stripe_m;
    uint16_t stripe_n;
    uint8_t stripe_column_bytes;
    uint32_t image_width, image_height;
    int code2d_slot;
    uint8_t barcode_m;
    size_t barcode_len;
    uint8_t barcode[TW_MAX_BARCODE];
    uint8_t tab_prev;
    uint8_t tab_count;
    uint8_t user_char_height;
    uint32_t user_chars_left;
    uint64_t skip;            /* ESC & glyph bytes / FS q image bytes to skip */
    uint32_t nv_left;
    uint8_t nv_block[4];
    uint8_t nv_block_len;

    /* from_device */
    struct request requests[TW_MAX_REQUESTS];
    unsigned nrequests;
    enum reply_state reply;
    uint64_t reply_off;
    uint8_t reply_header;
    uint8_t reply_body[4];
    unsigned reply_body_len;
    unsigned reply_span;      /* bytes of the ASB so far, XON/XOFF included */
    uint8_t reply_data[TW_MAX_INFO];
    unsigned reply_data_len;
    uint8_t reply_raw[TW_MAX_ERROR_RAW];
    unsigned reply_raw_len;
    int drawer_low;           /* drawer_open_level low: pin 3 low means open (section 9) */

    struct line line;
};

/* ------------------------------------------------------------------------------------------ buffers */

static int buf_reserve(tw_escpos *d, struct buf *b, size_t cap)
{
    uint8_t *p;
    if (b->cap >= cap)
        return 0;
    p = realloc(b->data, cap ? cap : 1);
    if (!p) {
        d->io.failed = TW_ERR_NOMEM;
        return -1;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

static void buf_free(struct buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

static void buf_append(tw_escpos *d, struct buf *b, const uint8_t *p, size_t n)
{
    size_t want;
    if (n == 0)
        return;
    /* grow geometrically (up to the image bound), so a group of many stripes costs few reallocs on any libc */
    want = b->len + n;
    if (want > b->cap && b->cap < TW_MAX_IMAGE_BYTES / 2 && want < 2 * b->cap)
        want = 2 * b->cap;
    if (buf_reserve(d, b, want) < 0)
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

/* --------------------------------------------------------------------------------------- msgpack out */

static uint64_t offset_of(const tw_escpos *d, const uint8_t *p)
{
    return d->io.in_base + (uint64_t)(p - d->io.in_start);
}

/* Every event is written in one go: event_open() reserves room for its fixed part (type, keys, short values;
 * EVENT_ROOM bounds them all) plus `extra` bytes of variable data, the writers fill it, event_close() commits. */
#define EVENT_ROOM 256

TW_INLINE uint8_t *event_open(tw_escpos *d, size_t extra)
{
    if (extra > SIZE_MAX - EVENT_ROOM) {
        d->io.out->oom = 1;
        return NULL;
    }
    return tw_out_room(d->io.out, EVENT_ROOM + extra);
}

TW_INLINE void event_close(tw_escpos *d, uint8_t *end)
{
    tw_out_commit(d->io.out, end);
}

#define HEAD TW_HEAD /* tw_event.h */
#define KEY TW_KEY
#define NAME_STR(p, name) tw_mpw_str((p), (name).s, (name).len)

/* bytes as latin-1 text (each byte is the code point of the same value): at most 2 * n + 5 bytes */
static uint8_t *w_latin1(uint8_t *p, const uint8_t *s, size_t n)
{
    size_t i, len = n;
    for (i = 0; i < n; i++)
        len += s[i] >> 7;
    p = tw_mpw_str_header(p, len);
    for (i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            *p++ = s[i];
        } else {
            *p++ = (uint8_t)(0xc0 | (s[i] >> 6));
            *p++ = (uint8_t)(0x80 | (s[i] & 0x3f));
        }
    }
    return p;
}

static void emit_error(tw_escpos *d, int code, uint64_t off, const uint8_t *raw, size_t raw_len)
{
    tw_emit_error(d->io.out, code, off, raw, raw_len);
}

static void status_request(tw_escpos *d, const char *kind, size_t kind_len, int64_t n)
{
    uint8_t *p = event_open(d, 0);
    if (!p)
        return;
    p = HEAD(p, "printer.status_request", 2);
    p = KEY(p, "kind");
    p = tw_mpw_str(p, kind, kind_len);
    p = KEY(p, "n");
    p = tw_mpw_int(p, n);
    event_close(d, p);
}
#define STATUS_REQUEST(d, kind, n) status_request((d), (kind), sizeof(kind) - 1, (n))

static void buzzer(tw_escpos *d, const char *command, size_t command_len, const uint8_t *params, size_t n)
{
    uint8_t *p = event_open(d, n);
    if (!p)
        return;
    p = HEAD(p, "printer.buzzer", 2);
    p = KEY(p, "command");
    p = tw_mpw_str(p, command, command_len);
    p = KEY(p, "params");
    p = tw_mpw_bin(p, params, n);
    event_close(d, p);
}
#define BUZZER(d, command, params, n) buzzer((d), (command), sizeof(command) - 1, (params), (n))

static void emit_kick(tw_escpos *d, int pin, unsigned on_ms, unsigned off_ms)
{
    uint8_t *p = event_open(d, 0);
    if (!p)
        return;
    p = HEAD(p, "drawer.kick", 3);
    p = KEY(p, "pin");
    p = tw_mpw_uint(p, (uint64_t)pin);
    p = KEY(p, "on_ms");
    p = tw_mpw_uint(p, on_ms);
    p = KEY(p, "off_ms");
    p = tw_mpw_uint(p, off_ms);
    event_close(d, p);
}

static void emit_image(tw_escpos *d, struct name kind, uint32_t width, uint64_t height,
                       const uint8_t digest[TW_SHA256_DIGEST_LEN], const uint8_t *rows, size_t rows_len)
{
    char hex[2 * TW_SHA256_DIGEST_LEN];
    uint8_t *p = event_open(d, d->images ? rows_len : 0);
    if (!p)
        return;
    tw_sha256_hex(digest, hex);
    p = HEAD(p, "printer.image", d->images ? 5 : 4);
    p = KEY(p, "kind");
    p = NAME_STR(p, kind);
    p = KEY(p, "width");
    p = tw_mpw_uint(p, width);
    p = KEY(p, "height");
    p = tw_mpw_uint(p, height);
    p = KEY(p, "sha256");
    p = tw_mpw_str(p, hex, sizeof(hex));
    if (d->images) {
        p = KEY(p, "bits");
        p = tw_mpw_bin(p, rows, rows_len);
    }
    event_close(d, p);
}

/* printer.image {kind, key} of a stored image printed by name (FS p, GS ( L fn 45/55). */
static void emit_image_key(tw_escpos *d, struct name kind, const uint8_t *key, size_t key_len, int latin1)
{
    uint8_t *p = event_open(d, 2 * key_len);
    if (!p)
        return;
    p = HEAD(p, "printer.image", 2);
    p = KEY(p, "kind");
    p = NAME_STR(p, kind);
    p = KEY(p, "key");
    p = latin1 ? w_latin1(p, key, key_len) : tw_mpw_str(p, key, key_len);
    event_close(d, p);
}

/* ------------------------------------------------------------------------------------------ lines */

static size_t utf8_put(char *dst, uint32_t cp)
{
    if (cp < 0x80) {
        dst[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        dst[0] = (char)(0xc0 | (cp >> 6));
        dst[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    dst[0] = (char)(0xe0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
}

/* The most one span takes: [start, end, {all nine style keys}]. */
#define SPAN_ROOM 128

static uint8_t *w_style(uint8_t *p, uint16_t s)
{
    unsigned nkeys = (unsigned)((s & ST_BOLD) != 0) + ((s & ST_UNDERLINE_MASK) != 0) +
                     ((s & ST_DOUBLE_STRIKE) != 0) + ((s & ST_INVERT) != 0) + ((s & ST_FONT_MASK) != 0) +
                     ((s & ST_WIDTH_MASK) != 0) + ((s & ST_HEIGHT_MASK) != 0) + ((s & ST_UPSIDE_DOWN) != 0) +
                     ((s & ST_ROTATE) != 0);
    p = tw_mpw_map(p, nkeys);
    if (s & ST_BOLD) {
        p = KEY(p, "bold");
        p = tw_mpw_bool(p, 1);
    }
    if (s & ST_UNDERLINE_MASK) {
        p = KEY(p, "underline");
        p = tw_mpw_uint(p, (s & ST_UNDERLINE_MASK) >> ST_UNDERLINE_SHIFT);
    }
    if (s & ST_DOUBLE_STRIKE) {
        p = KEY(p, "double_strike");
        p = tw_mpw_bool(p, 1);
    }
    if (s & ST_INVERT) {
        p = KEY(p, "invert");
        p = tw_mpw_bool(p, 1);
    }
    if (s & ST_FONT_MASK) {
        p = KEY(p, "font");
        p = NAME_STR(p, font_names[(s & ST_FONT_MASK) >> ST_FONT_SHIFT]);
    }
    if (s & ST_WIDTH_MASK) {
        p = KEY(p, "width");
        p = tw_mpw_uint(p, ((s & ST_WIDTH_MASK) >> ST_WIDTH_SHIFT) + 1u);
    }
    if (s & ST_HEIGHT_MASK) {
        p = KEY(p, "height");
        p = tw_mpw_uint(p, ((s & ST_HEIGHT_MASK) >> ST_HEIGHT_SHIFT) + 1u);
    }
    if (s & ST_UPSIDE_DOWN) {
        p = KEY(p, "upside_down");
        p = tw_mpw_bool(p, 1);
    }
    if (s & ST_ROTATE) {
        p = KEY(p, "rotate");
        p = tw_mpw_bool(p, 1);
    }
    return p;
}

static void clear_line(struct line *l)
{
    l->text_len = 0;
    l->ncp = 0;
    l->nruns = 0;
}

/* printer.line {text, align, spans}: spans are the runs whose style is not plain. */
static void emit_line(tw_escpos *d)
{
    struct line *l = &d->line;
    uint32_t i, nspans = 0;
    uint8_t *p;

    for (i = 0; i < l->nruns; i++)
        nspans += l->runs[i].style != 0;
    p = event_open(d, l->text_len + (size_t)nspans * SPAN_ROOM);
    if (p) {
        p = HEAD(p, "printer.line", 3);
        p = KEY(p, "text");
        tw_card_scrub((uint8_t *)l->text, l->text_len); /* a PAN printed on a receipt leaves masked (payment.md section 2) */
        p = tw_mpw_str(p, l->text, l->text_len);
        p = KEY(p, "align");
        p = NAME_STR(p, align_names[d->align]);
        p = KEY(p, "spans");
        p = tw_mpw_array(p, nspans);
        for (i = 0; i < l->nruns; i++) {
            const struct run *r = &l->runs[i];
            if (r->style == 0)
                continue;
            p = tw_mpw_array(p, 3);
            p = tw_mpw_uint(p, r->start);
            p = tw_mpw_uint(p, i + 1 < l->nruns ? l->runs[i + 1].start : l->ncp);
            p = w_style(p, r->style);
        }
        event_close(d, p);
    }
    clear_line(l);
}

static void emit_group(tw_escpos *d);

/* Room for one more code point in the line, in the current style: splits a full line, starts a run. */
static void prepare_char(tw_escpos *d, uint64_t off)
{
    struct line *l = &d->line;
    if (d->group.open)
        emit_group(d);
    if (l->ncp >= TW_MAX_LINE_CHARS) {
        emit_error(d, TW_ERR_LINE_TOO_LONG, off, NULL, 0);
        emit_line(d);
    }
    if (l->nruns == 0 || l->runs[l->nruns - 1].style != d->style) {
        l->runs[l->nruns].start = (uint16_t)l->ncp;
        l->runs[l->nruns].style = d->style;
        l->nruns++;
    }
}

static void add_char(tw_escpos *d, uint32_t cp, uint64_t off)
{
    struct line *l = &d->line;
    prepare_char(d, off);
    l->text_len += utf8_put(l->text + l->text_len, cp);
    l->ncp++;
}

/* Plain ASCII bytes that map to themselves: copied into the line as they are. */
static void add_ascii(tw_escpos *d, const uint8_t *s, size_t n, uint64_t off)
{
    struct line *l = &d->line;
    while (n > 0) {
        size_t room, k;
        prepare_char(d, off);
        room = TW_MAX_LINE_CHARS - l->ncp;
        k = n < room ? n : room;
        memcpy(l->text + l->text_len, s, k);
        l->text_len += k;
        l->ncp += (uint32_t)k;
        s += k;
        n -= k;
        off += k;
    }
}

/* ------------------------------------------------------------------------------------------ images */

static void emit_group(tw_escpos *d)
{
    struct group *g = &d->group;
    uint8_t digest[TW_SHA256_DIGEST_LEN];
    if (!g->open)
        return;
    g->open = 0;
    d->group_in_line = 0;
    tw_sha256_final(&g->sha, digest);
    emit_image(d, (struct name)NAME("bitimage"), g->n, g->height, digest, g->rows.data, g->rows.len);
    g->rows.len = 0;
}

/* Section 2: an open bit-image group, then the pending line if it has text. */
static void flush(tw_escpos *d)
{
    emit_group(d);
    if (d->line.ncp)
        emit_line(d);
}

static void line_feed(tw_escpos *d)
{
    if (d->group_in_line) {
        d->group_in_line = 0;
        return;
    }
    emit_group(d);
    emit_line(d);
}

/* Prepares `writer` to turn `width` columns of `col_bytes` bytes into zeroed rows in `b`. */
static int columns_begin(tw_escpos *d, struct buf *b, uint32_t width, uint32_t col_bytes)
{
    struct column_writer *w = &d->columns;
    size_t row_bytes = ((size_t)width + 7) / 8;
    size_t size = row_bytes * col_bytes * 8;
    if (buf_reserve(d, b, size) < 0)
        return -1;
    if (size)
        memset(b->data, 0, size);
    b->len = size;
    w->rows = b->data;
    w->row_bytes = row_bytes;
    w->col_bytes = col_bytes;
    w->col = 0;
    w->k = 0;
    return 0;
}

static void columns_write(struct column_writer *w, const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint8_t v = p[i];
        if (v) {
            uint8_t mask = (uint8_t)(0x80u >> (w->col & 7));
            uint8_t *dst = w->rows + (size_t)w->k * 8 * w->row_bytes + (w->col >> 3);
            unsigned bit;
            for (bit = 0; bit < 8; bit++)
                if (v & (0x80u >> bit))
                    dst[bit * w->row_bytes] |= mask;
        }
        if (++w->k == w->col_bytes) {
            w->k = 0;
            w->col++;
        }
    }
}

static void stripe_done(tw_escpos *d)
{
    struct group *g = &d->group;
    size_t len = d->stripe.len;
    if (g->open && g->rows_len + len > TW_MAX_IMAGE_BYTES)
        emit_group(d);
    if (!g->open) {
        g->open = 1;
        g->m = d->stripe_m;
        g->n = d->stripe_n;
        g->height = 0;
        g->rows_len = 0;
        g->rows.len = 0;
        tw_sha256_init(&g->sha);
    }
    tw_sha256_update(&g->sha, d->stripe.data, len);
    if (d->images)
        buf_append(d, &g->rows, d->stripe.data, len);
    g->rows_len += len;
    g->height += 8u * d->stripe_column_bytes;
    d->group_in_line = 1;
}

static void store_image(struct stored_image *img, uint32_t width, uint32_t height, size_t rows_len)
{
    img->present = 1;
    img->width = width;
    img->height = height;
    img->rows.len = rows_len;
}

static void print_stored(tw_escpos *d, struct stored_image *img, struct name kind)
{
    emit_image(d, kind, img->width, img->height, img->digest, img->rows.data, img->rows.len);
}

/* Digest of rows already complete in img->rows. */
static void digest_rows(struct stored_image *img, size_t rows_len)
{
    tw_sha256 sha;
    tw_sha256_init(&sha);
    tw_sha256_update(&sha, img->rows.data, rows_len);
    tw_sha256_final(&sha, img->digest);
}

/* ------------------------------------------------------------------------------------------ barcodes */

static int valid_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len, k;
        uint8_t lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            len = 2;
        else if (c >= 0xe0 && c <= 0xef)
            len = 3;
        else if (c >= 0xf0 && c <= 0xf4)
            len = 4;
        else
            return 0;
        /* the second byte's range excludes overlong forms, surrogates and code points above U+10FFFF */
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
        else if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
        if (n - i < len || s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (k = 2; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* CODE128 / GS1-128 data with Epson's `{` code-set escapes, as the characters it encodes (section 5).
 * Returns the UTF-8 length written to out (at most 3 bytes per input byte). */
static size_t decode_code128(const uint8_t *data, size_t n, char *out)
{
    size_t i = 0, len = 0;
    int set_c = 0, first = 1;
    while (i < n) {
        uint8_t b = data[i];
        if (b == 0x7B && i + 1 < n) { /* '{' */
            uint8_t c = data[i + 1];
            if (c == 0x41 || c == 0x42 || c == 0x43) { /* {A {B {C */
                set_c = c == 0x43;
                i += 2;
                continue;
            }
            if (c == 0x53 || c == 0x32 || c == 0x33 || c == 0x34) { /* {S {2 {3 {4 */
                first = 0;
                i += 2;
                continue;
            }
            if (c == 0x31) { /* {1 FNC1 */
                if (!first)
                    out[len++] = 0x1d;
                first = 0;
                i += 2;
                continue;
            }
            if (c == 0x7B) { /* {{ */
                out[len++] = 0x7B;
                first = 0;
                i += 2;
                continue;
            }
        }
        if (set_c) {
            if (b <= 99) {
                out[len++] = (char)('0' + b / 10);
                out[len++] = (char)('0' + b % 10);
            } else {
                len += utf8_put(out + len, REPLACEMENT);
            }
        } else {
            len += utf8_put(out + len, b);
        }
        first = 0;
        i++;
    }
    return len;
}

static void emit_barcode(tw_escpos *d, uint8_t m, const uint8_t *data, size_t n)
{
    uint8_t *p = event_open(d, 3 * n);
    if (!p)
        return;
    p = HEAD(p, "printer.barcode", 2);
    p = KEY(p, "symbology");
    p = NAME_STR(p, barcode_name(m));
    p = KEY(p, "data");
    if (m == 73 || m == 74) {
        char text[TW_MAX_BARCODE * 3];
        p = tw_mpw_str(p, text, decode_code128(data, n, text));
    } else {
        p = w_latin1(p, data, n);
    }
    event_close(d, p);
}

/* ------------------------------------------------------------------------------------------ state */

/* ESC R n (n has a slot) */
static void select_charset(tw_escpos *d, uint8_t n)
{
    d->charset = d->charsets + (size_t)d->charset_index[n] * 128;
    d->charset_is_ascii = d->charset_ascii[n];
}

/* Which international sets leave 0x20..0x7f alone, so that their text can take the fast path. */
static void find_ascii_charsets(tw_escpos *d)
{
    unsigned n, b;
    for (n = 0; n < 256; n++) {
        const uint16_t *set;
        if (d->charset_index[n] < 0)
            continue;
        set = d->charsets + (size_t)d->charset_index[n] * 128;
        d->charset_ascii[n] = 1;
        for (b = 0x20; b < 0x80; b++)
            if (set[b] != b)
                d->charset_ascii[n] = 0;
    }
}

/* Power-on state and ESC @ (section 3): style, align, tables, Kanji, line, images, 2D codes. */
static void reset_printer(tw_escpos *d)
{
    int i;
    d->style = 0;
    d->align = ALIGN_LEFT;
    d->codepage = d->codepages + (size_t)d->codepage_index[d->default_codepage] * 128;
    select_charset(d, (uint8_t)d->default_charset);
    d->kanji = 0;
    d->lead_pending = 0;
    clear_line(&d->line);
    d->group.open = 0;
    d->group.rows.len = 0;
    d->group_in_line = 0;
    for (i = 0; i < N_CODE2D; i++)
        d->code2d[i].present = 0;
    d->graphics.present = 0;
    d->downloaded.present = 0;
    d->deselected = 0;
}

/* ------------------------------------------------------------------------------------------ headers */

static size_t graphics_head(const uint8_t *payload, size_t avail)
{
    if (avail < 2)
        return 2;
    switch (payload[1]) {
    case 0x70: return 10;
    case 0x71: return 9;
    case 0x45: case 0x55: return 4;
    default: return 2;
    }
}

static size_t min_size(size_t a, uint64_t b)
{
    return (uint64_t)a < b ? a : (size_t)b;
}

/* Payload bytes of an x ( x command kept in its header. */
static size_t paren_head(enum paren kind, const uint8_t *payload, size_t avail, uint32_t length)
{
    size_t want;
    switch (kind) {
    case P_CODE2D: want = 3; break;                              /* cn fn m */
    case P_GRAPHICS: want = graphics_head(payload, avail); break; /* 30 fn + layout */
    case P_RESPONSE: want = 1; break;                            /* fn */
    case P_ENCODING: case P_ASB_EXT: want = 2; break;
    case P_BUZZER: want = 32; break;                             /* the buzzer parameters */
    default: want = 0; break;
    }
    return min_size(want, length);
}

static size_t paren_need(const uint8_t *b, size_t avail)
{
    enum paren kind;
    uint32_t length;
    if (avail < 5)
        return 5;
    kind = paren_of(b[0], b[2]);
    if (kind == P_UNKNOWN)
        return 5;
    length = (uint32_t)b[3] | (uint32_t)b[4] << 8;
    return 5 + paren_head(kind, b + 5, avail - 5, length);
}

/* How many bytes from b[0] form the command's header. Looks only at the `avail` bytes there are, and asks for
 * more (returns > avail) until it can decide; more bytes never make the answer smaller. */
static size_t header_need(const uint8_t *b, size_t avail)
{
    const struct command *c;
    if (avail < 2)
        return 2;
    c = &commands_of(b[0])[b[1]];
    switch (c->rule) {
    case R_FIXED:
        return c->len ? c->len : 2;
    case R_PAREN:
        return paren_need(b, avail);
    case R_BITIMAGE:
        if (avail < 3)
            return 3;
        return bitimage_column_bytes(b[2]) ? 5 : 3;
    case R_KICK:
        if (avail < 3)
            return 3;
        return kick_pin(b[2]) ? 5 : 3;
    case R_CUT: {
        int with_feed;
        if (avail < 3)
            return 3;
        return cut_mode(b[2], &with_feed) && with_feed ? 4 : 3;
    }
    case R_BARCODE:
        if (avail < 3)
            return 3;
        return b[2] >= 65 && b[2] <= 79 ? 4 : 3;
    case R_RASTER:
        if (avail < 3)
            return 3;
        return b[2] == 0x30 ? 8 : 3;
    case R_GS8: {
        uint32_t length;
        size_t have;
        if (avail < 3)
            return 3;
        if (b[2] != 0x4c)
            return 3;
        if (avail < 7)
            return 7;
        length = (uint32_t)b[3] | (uint32_t)b[4] << 8 | (uint32_t)b[5] << 16 | (uint32_t)b[6] << 24;
        have = avail - 7 < 10 ? avail - 7 : 10;
        return 7 + min_size(graphics_head(b + 7, have), length);
    }
    case R_COUNTER:
        if (avail < 3)
            return 3;
        return b[2] == 0x30 || b[2] == 0x32 ? 6 : 3;
    case R_NV_MEMORY:
        if (avail < 3)
            return 3;
        return b[2] == 0x31 || b[2] == 0x32 ? 10 : 3;
    case R_BMP:
        if (avail < 4)
            return 4;
        return b[2] == 0x30 && (b[3] == 0x43 || b[3] == 0x53) ? 15 : 4;
    case R_DLE_EOT:
        if (avail < 3)
            return 3;
        switch (b[2]) {
        case 7: case 8: case 18: return 4;
        default: return 3;
        }
    case R_DLE_DC4:
        if (avail < 3)
            return 3;
        switch (b[2]) {
        case 1:
            if (avail < 4)
                return 4;
            return b[3] <= 1 ? 5 : 4;
        case 2: return 5;
        case 3: return 8;
        case 7: return 4;
        case 8: return 10;
        default: return 3;
        }
    default:
        return 2;
    }
}

/* Section 7: ESC = n. bit0 set selects the printer; bit0 clear deselects it, and bit1 set then routes the bytes
 * the printer skips to the embedded customer display. A display that stops being selected ends its burst. */
static void select_peripheral(tw_escpos *d, uint8_t v)
{
    int on = !(v & 1) && (v & 2) && d->display;
    d->deselected = !(v & 1);
    if (d->display_on && !on)
        tw_display_model_settle(d->display, d->io.out);
    d->display_on = on;
}

/* Section 7: while deselected only ESC = n and the real-time DLE commands count; 1 = skip the first byte. */
static size_t deselected_need(const uint8_t *b, size_t avail)
{
    if (avail < 2)
        return 2;
    if (b[0] == ESC) {
        if (b[1] != 0x3d)
            return 1;
        return 3;
    }
    if (b[1] != 0x04 && b[1] != 0x05 && b[1] != 0x14)
        return 1;
    return header_need(b, avail);
}

/* ------------------------------------------------------------------------------------------ payloads */

static void keep_command(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off)
{
    d->cmd_off = off;
    d->cmd_hdr_len = hlen < TW_MAX_ERROR_RAW ? hlen : TW_MAX_ERROR_RAW;
    memcpy(d->cmd_hdr, h, d->cmd_hdr_len);
}

static void payload_done(tw_escpos *d, enum cont kind);

/* `length` payload bytes follow the header; `kind` says what becomes of them. */
static void begin_payload(tw_escpos *d, enum cont kind, uint64_t length, const uint8_t *h, size_t hlen,
                          uint64_t off)
{
    keep_command(d, h, hlen, off);
    if (length == 0) {
        payload_done(d, kind);
        return;
    }
    d->cont = kind;
    d->remaining = length;
}

static void skip_payload(tw_escpos *d, uint64_t length, const uint8_t *h, size_t hlen, uint64_t off)
{
    begin_payload(d, CONT_SKIP, length, h, hlen, off);
}

static void payload_done(tw_escpos *d, enum cont kind)
{
    d->cont = CONT_NONE;
    switch (kind) {
    case CONT_STRIPE:
        stripe_done(d);
        break;
    case CONT_RASTER: {
        uint8_t digest[TW_SHA256_DIGEST_LEN];
        tw_sha256_final(&d->sha, digest);
        emit_image(d, (struct name)NAME("raster"), d->image_width, d->image_height, digest, d->raster.data, d->raster.len);
        d->raster.len = 0;
        break;
    }
    case CONT_GRAPHICS_ROWS: {
        struct stored_image *img = &d->graphics;
        tw_sha256_final(&d->sha, img->digest);
        store_image(img, d->image_width, d->image_height, img->rows.len);
        break;
    }
    case CONT_GRAPHICS_COLUMNS: {
        struct stored_image *img = &d->graphics;
        size_t rows_len = (((size_t)d->image_width + 7) / 8) * d->image_height;
        digest_rows(img, rows_len);
        store_image(img, d->image_width, d->image_height, rows_len);
        break;
    }
    case CONT_DOWNLOAD: {
        struct stored_image *img = &d->downloaded;
        digest_rows(img, img->rows.len);
        store_image(img, d->image_width, d->image_height, img->rows.len);
        break;
    }
    case CONT_CODE2D:
        d->code2d[d->code2d_slot].present = 1;
        break;
    case CONT_BARCODE_B:
        emit_barcode(d, d->barcode_m, d->barcode, d->barcode_len);
        break;
    default:
        break;
    }
}

/* Consumes payload bytes of the current continuation; returns where the input continues. */
static const uint8_t *consume_payload(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    size_t avail = (size_t)(end - p);
    size_t take = d->remaining < avail ? (size_t)d->remaining : avail;
    enum cont kind = d->cont;

    switch (kind) {
    case CONT_STRIPE:
    case CONT_GRAPHICS_COLUMNS:
    case CONT_DOWNLOAD:
        columns_write(&d->columns, p, take);
        break;
    case CONT_RASTER:
        tw_sha256_update(&d->sha, p, take);
        if (d->images)
            buf_append(d, &d->raster, p, take);
        break;
    case CONT_GRAPHICS_ROWS:
        tw_sha256_update(&d->sha, p, take);
        if (d->images)
            buf_append(d, &d->graphics.rows, p, take);
        break;
    case CONT_CODE2D: {
        struct code2d_slot *slot = &d->code2d[d->code2d_slot];
        memcpy(slot->data + slot->len, p, take);
        slot->len += take;
        break;
    }
    case CONT_BARCODE_B:
        memcpy(d->barcode + d->barcode_len, p, take);
        d->barcode_len += take;
        break;
    default:
        break;
    }
    d->remaining -= take;
    if (d->remaining == 0)
        payload_done(d, kind);
    return p + take;
}

/* GS k function A: data bytes up to NUL (section 5). */
static const uint8_t *consume_barcode_a(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint8_t b = *p;
        if (b == 0) {
            d->cont = CONT_NONE;
            emit_barcode(d, d->barcode_m, d->barcode, d->barcode_len);
            return p + 1;
        }
        if (!barcode_a_allows(d->barcode_m, b)) {
            d->cont = CONT_NONE;
            emit_error(d, TW_ERR_BARCODE_BAD_DATA, offset_of(d, p), d->cmd_hdr, d->cmd_hdr_len);
            return p;
        }
        if (d->barcode_len == TW_MAX_BARCODE) {
            d->cont = CONT_NONE;
            emit_error(d, TW_ERR_BARCODE_TOO_LONG, offset_of(d, p), d->cmd_hdr, d->cmd_hdr_len);
            return p;
        }
        d->barcode[d->barcode_len++] = b;
        p++;
    }
    return p;
}

/* ESC D: tab stops, each greater than the previous, up to NUL or 32 values (section 3.4). */
static const uint8_t *consume_tabs(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint8_t v = *p;
        if (v == 0) {
            d->cont = CONT_NONE;
            return p + 1;
        }
        if (v <= d->tab_prev) {
            d->cont = CONT_NONE;
            return p;
        }
        d->tab_prev = v;
        p++;
        if (++d->tab_count == 32) {
            d->cont = CONT_NONE;
            return p;
        }
    }
    return p;
}

/* Skips d->skip bytes; 1 when the skipping is still going on at `end`. */
static int skip_bytes(tw_escpos *d, const uint8_t **p, const uint8_t *end)
{
    size_t avail = (size_t)(end - *p);
    size_t take = d->skip < avail ? (size_t)d->skip : avail;
    *p += take;
    d->skip -= take;
    return d->skip > 0;
}

/* ESC & y c1 c2: for each character, x then y*x glyph bytes (section 3.4). */
static const uint8_t *consume_user_chars(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint8_t x;
        if (d->skip) {
            if (skip_bytes(d, &p, end))
                return p;
            if (d->user_chars_left == 0) {
                d->cont = CONT_NONE;
                return p;
            }
            continue;
        }
        x = *p++;
        d->user_chars_left--;
        if (x > 12) {
            d->cont = CONT_NONE;
            emit_error(d, TW_ERR_BAD_PARAMETER, offset_of(d, p - 1), &x, 1);
            return p;
        }
        d->skip = (uint64_t)d->user_char_height * x;
        if (d->skip == 0 && d->user_chars_left == 0) {
            d->cont = CONT_NONE;
            return p;
        }
    }
    return p;
}

/* FS q n: n blocks of xL xH yL yH + x*y*8 bytes (section 3.4). */
static const uint8_t *consume_nv_define(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        if (d->skip) {
            if (skip_bytes(d, &p, end))
                return p;
            if (d->nv_left == 0) {
                d->cont = CONT_NONE;
                return p;
            }
            continue;
        }
        d->nv_block[d->nv_block_len++] = *p++;
        if (d->nv_block_len == 4) {
            uint64_t x = (uint64_t)d->nv_block[0] | (uint64_t)d->nv_block[1] << 8;
            uint64_t y = (uint64_t)d->nv_block[2] | (uint64_t)d->nv_block[3] << 8;
            d->skip = x * y * 8;
            d->nv_block_len = 0;
            d->nv_left--;
            if (d->skip == 0 && d->nv_left == 0) {
                d->cont = CONT_NONE;
                return p;
            }
        }
    }
    return p;
}

static const uint8_t *run_cont(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    switch (d->cont) {
    case CONT_BARCODE_A: return consume_barcode_a(d, p, end);
    case CONT_TABS: return consume_tabs(d, p, end);
    case CONT_USER_CHARS: return consume_user_chars(d, p, end);
    case CONT_NV_DEFINE: return consume_nv_define(d, p, end);
    default: return consume_payload(d, p, end);
    }
}

/* ------------------------------------------------------------------------------------------ commands */

static void bad_parameter(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off)
{
    emit_error(d, TW_ERR_BAD_PARAMETER, off, h, hlen);
}

/* GS D: graphics defined from a BMP file. A definition prints nothing, so only its length matters: the file's own
 * size field (bytes 2..5 of the BMP, little-endian), of which the header already holds the first 6 bytes. */
static void define_bmp(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off)
{
    uint32_t size;
    if (hlen == 4) {
        bad_parameter(d, h, 4, off);
        return;
    }
    size = (uint32_t)h[11] | (uint32_t)h[12] << 8 | (uint32_t)h[13] << 16 | (uint32_t)h[14] << 24;
    if (h[9] != 0x42 || h[10] != 0x4D || size < 14) { /* "BM"; a BMP file header alone is 14 bytes */
        emit_error(d, TW_ERR_BAD_LENGTH, off, h, hlen);
        return;
    }
    if (size - 6u > TW_MAX_IMAGE_BYTES)
        emit_error(d, TW_ERR_IMAGE_TOO_LARGE, off, h, hlen);
    skip_payload(d, (uint64_t)size - 6u, h, hlen, off);
}

static void set_style_bit(tw_escpos *d, uint16_t bit, int on)
{
    d->style = (uint16_t)(on ? d->style | bit : d->style & ~bit);
}

static void set_style_field(tw_escpos *d, uint16_t mask, unsigned shift, unsigned value)
{
    d->style = (uint16_t)((d->style & ~mask) | ((value << shift) & mask));
}

/* ESC ! n: font A/B, bold, double height and width, underline (section 3). */
static void esc_print_mode(tw_escpos *d, uint8_t n)
{
    set_style_field(d, ST_FONT_MASK, ST_FONT_SHIFT, n & 1);
    set_style_bit(d, ST_BOLD, n & 0x08);
    set_style_field(d, ST_HEIGHT_MASK, ST_HEIGHT_SHIFT, (n & 0x10) ? 1 : 0);
    set_style_field(d, ST_WIDTH_MASK, ST_WIDTH_SHIFT, (n & 0x20) ? 1 : 0);
    set_style_field(d, ST_UNDERLINE_MASK, ST_UNDERLINE_SHIFT, (n & 0x80) ? 1 : 0);
}

static void esc_bitimage(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    uint8_t m = h[2];
    unsigned column_bytes = bitimage_column_bytes(m);
    uint16_t n;
    if (!column_bytes) {
        bad_parameter(d, h, 3, off);
        return;
    }
    n = (uint16_t)(h[3] | h[4] << 8);
    if (d->group.open && (d->group.m != m || d->group.n != n))
        emit_group(d);
    if (d->line.ncp)
        emit_line(d);
    d->stripe_m = m;
    d->stripe_n = n;
    d->stripe_column_bytes = (uint8_t)column_bytes;
    if (columns_begin(d, &d->stripe, n, column_bytes) < 0)
        return;
    begin_payload(d, CONT_STRIPE, (uint64_t)n * column_bytes, h, 5, off);
}

static void esc_user_chars(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    uint8_t y = h[2], c1 = h[3], c2 = h[4];
    if (!(y >= 1 && y <= 3 && c1 >= 32 && c1 <= c2 && c2 <= 126)) {
        bad_parameter(d, h, 5, off);
        return;
    }
    keep_command(d, h, 5, off);
    d->user_char_height = y;
    d->user_chars_left = (uint32_t)(c2 - c1 + 1);
    d->skip = 0;
    d->cont = CONT_USER_CHARS;
}

static void code2d(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off, const uint8_t *head, size_t head_len,
                   uint64_t rest)
{
    int slot;
    uint8_t cn, fn;
    if (head_len < 2) {
        skip_payload(d, rest, h, hlen, off);
        return;
    }
    cn = head[0];
    fn = head[1];
    slot = code2d_slot_of(cn);
    if (slot < 0) {
        skip_payload(d, rest, h, hlen, off);
        return;
    }
    if (fn == 0x50) {
        if (rest > TW_MAX_CODE2D) {
            emit_error(d, TW_ERR_CODE2D_TOO_LONG, off, h, 5);
            d->code2d[slot].present = 0;
            skip_payload(d, rest, h, hlen, off);
            return;
        }
        d->code2d_slot = slot;
        d->code2d[slot].present = 0;
        d->code2d[slot].len = 0;
        begin_payload(d, CONT_CODE2D, rest, h, hlen, off);
        return;
    }
    if (fn == 0x51) {
        struct code2d_slot *s = &d->code2d[slot];
        if (!s->present) {
            emit_error(d, TW_ERR_CODE2D_EMPTY, off, h, 5);
        } else {
            uint8_t *p;
            flush(d);
            p = event_open(d, s->len);
            if (p) {
                p = HEAD(p, "printer.code2d", 2);
                p = KEY(p, "symbology");
                p = NAME_STR(p, code2d_names[slot]);
                p = KEY(p, "data");
                if (valid_utf8(s->data, s->len))
                    p = tw_mpw_str(p, s->data, s->len);
                else
                    p = tw_mpw_bin(p, s->data, s->len);
                event_close(d, p);
            }
        }
    } else if (fn == 0x52) {
        STATUS_REQUEST(d, "code2d_size", cn);
    }
    skip_payload(d, rest, h, hlen, off);
}

/* GS ( L and GS 8 L: `head` is the payload's start (30 fn ...), `rest` the payload bytes after it (section 6). */
static void graphics(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off, const uint8_t *head,
                     size_t head_len, uint64_t rest)
{
    uint8_t fn;
    if (head_len < 2) {
        skip_payload(d, rest, h, hlen, off);
        return;
    }
    fn = head[1];
    if (fn == 0x70 || fn == 0x71) {
        size_t layout = fn == 0x70 ? 10 : 9;
        uint32_t x, y;
        uint64_t expected;
        if (head_len < layout) {
            emit_error(d, TW_ERR_BAD_LENGTH, off, h, hlen);
            skip_payload(d, rest, h, hlen, off);
            return;
        }
        if (fn == 0x70) {
            x = (uint32_t)head[6] | (uint32_t)head[7] << 8;
            y = (uint32_t)head[8] | (uint32_t)head[9] << 8;
            expected = (uint64_t)((x + 7) / 8) * y;
        } else {
            x = (uint32_t)head[5] | (uint32_t)head[6] << 8;
            y = (uint32_t)head[7] | (uint32_t)head[8] << 8;
            expected = (uint64_t)x * ((y + 7) / 8);
        }
        if (head_len - layout + rest != expected) {
            emit_error(d, TW_ERR_BAD_LENGTH, off, h, hlen);
            skip_payload(d, rest, h, hlen, off);
            return;
        }
        if (expected > TW_MAX_IMAGE_BYTES) {
            emit_error(d, TW_ERR_IMAGE_TOO_LARGE, off, h, hlen);
            skip_payload(d, rest, h, hlen, off);
            return;
        }
        d->image_width = x;
        d->image_height = y;
        d->graphics.present = 0;
        if (fn == 0x70) {
            tw_sha256_init(&d->sha);
            d->graphics.rows.len = 0;
            if (d->images && buf_reserve(d, &d->graphics.rows, (size_t)expected) < 0)
                return;
            begin_payload(d, CONT_GRAPHICS_ROWS, rest, h, hlen, off);
        } else {
            if (columns_begin(d, &d->graphics.rows, x, (y + 7) / 8) < 0)
                return;
            begin_payload(d, CONT_GRAPHICS_COLUMNS, rest, h, hlen, off);
        }
        return;
    }
    if (fn == 0x32) {
        if (d->graphics.present) {
            flush(d);
            print_stored(d, &d->graphics, (struct name)NAME("graphics"));
            d->graphics.present = 0;
        }
    } else if ((fn == 0x45 || fn == 0x55) && head_len >= 4) {
        flush(d);
        if (fn == 0x45)
            emit_image_key(d, (struct name)NAME("nv"), head + 2, 2, 1);
        else
            emit_image_key(d, (struct name)NAME("download"), head + 2, 2, 1);
    }
    skip_payload(d, rest, h, hlen, off);
}

static void paren(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off)
{
    uint32_t length = (uint32_t)h[3] | (uint32_t)h[4] << 8;
    const uint8_t *head = h + 5;
    size_t head_len = hlen - 5;
    uint64_t rest = length - head_len;

    switch (paren_of(h[0], h[2])) {
    case P_UNKNOWN:
        emit_error(d, TW_ERR_UNKNOWN_COMMAND, off, h, 5);
        skip_payload(d, rest, h, 5, off);
        return;
    case P_BUZZER:
        BUZZER(d, "ESC ( A", head, head_len);
        break;
    case P_RESPONSE:
        if (head_len >= 1 && head[0] == 0x30)
            STATUS_REQUEST(d, "process_id", 48);
        break;
    case P_ENCODING:
        if (head_len == 2 && head[0] == 0x30 && (head[1] == 2 || head[1] == 50))
            emit_error(d, TW_ERR_UNSUPPORTED_ENCODING, off, h, hlen);
        break;
    case P_ASB_EXT:
        STATUS_REQUEST(d, "asb_ext", head_len >= 2 ? head[1] : 0);
        break;
    case P_CODE2D:
        code2d(d, h, hlen, off, head, head_len, rest);
        return;
    case P_GRAPHICS:
        graphics(d, h, hlen, off, head, head_len, rest);
        return;
    case P_SKIP:
        break;
    }
    skip_payload(d, rest, h, hlen, off);
}

static void gs_barcode(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    uint8_t m = h[2];
    if (m <= 6) {
        flush(d);
        keep_command(d, h, 3, off);
        d->barcode_m = m;
        d->barcode_len = 0;
        d->cont = CONT_BARCODE_A;
    } else if (m >= 65 && m <= 79) {
        flush(d);
        d->barcode_m = m;
        d->barcode_len = 0;
        begin_payload(d, CONT_BARCODE_B, h[3], h, 4, off);
    } else {
        bad_parameter(d, h, 3, off);
    }
}

static void gs_raster(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    uint32_t x, y;
    uint64_t size;
    if (h[2] != 0x30) {
        bad_parameter(d, h, 3, off);
        return;
    }
    x = (uint32_t)h[4] | (uint32_t)h[5] << 8;
    y = (uint32_t)h[6] | (uint32_t)h[7] << 8;
    size = (uint64_t)x * y;
    if (size > TW_MAX_IMAGE_BYTES) {
        emit_error(d, TW_ERR_IMAGE_TOO_LARGE, off, h, 8);
        skip_payload(d, size, h, 8, off);
        return;
    }
    flush(d);
    d->image_width = 8 * x;
    d->image_height = y;
    tw_sha256_init(&d->sha);
    d->raster.len = 0;
    if (d->images && buf_reserve(d, &d->raster, (size_t)size) < 0)
        return;
    begin_payload(d, CONT_RASTER, size, h, 8, off);
}

static void gs_define_downloaded(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    uint32_t x = h[2], y = h[3];
    d->image_width = 8 * x;
    d->image_height = 8 * y;
    if (columns_begin(d, &d->downloaded.rows, 8 * x, y) < 0)
        return;
    d->downloaded.present = 0;
    begin_payload(d, CONT_DOWNLOAD, (uint64_t)x * y * 8, h, 4, off);
}

static void dle_eot(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    enum request_kind kind;
    switch (h[2]) {
    case 1: kind = RQ_PRINTER; break;
    case 2: kind = RQ_OFFLINE; break;
    case 3: kind = RQ_ERROR; break;
    case 4: kind = RQ_PAPER; break;
    case 7: kind = RQ_INK; break;
    case 8: kind = RQ_PEELER; break;
    case 18: kind = RQ_INTERFACE; break;
    default: bad_parameter(d, h, 3, off); return;
    }
    status_request(d, request_names[kind].s, request_names[kind].len, h[2]);
}

static void dle_dc4(tw_escpos *d, const uint8_t *h, uint64_t off)
{
    switch (h[2]) {
    case 1:
        if (h[3] > 1) {
            bad_parameter(d, h, 4, off);
            return;
        }
        emit_kick(d, h[3] == 0 ? 2 : 5, h[4] * 100u, h[4] * 100u);
        return;
    case 2:
        return;
    case 3:
        BUZZER(d, "DLE DC4 3", h + 3, 5);
        return;
    case 7:
        STATUS_REQUEST(d, "realtime_asb", h[3]);
        return;
    case 8:
        STATUS_REQUEST(d, "clear_buffer", 8);
        return;
    default:
        bad_parameter(d, h, 3, off);
        return;
    }
}

/* printer.cut {partial[, feed]}; feed < 0: none given */
static void emit_cut(tw_escpos *d, int partial, int feed)
{
    uint8_t *p = event_open(d, 0);
    if (!p)
        return;
    p = HEAD(p, "printer.cut", feed < 0 ? 1 : 2);
    p = KEY(p, "partial");
    p = tw_mpw_bool(p, partial);
    if (feed >= 0) {
        p = KEY(p, "feed");
        p = tw_mpw_uint(p, (uint64_t)feed);
    }
    event_close(d, p);
}

static void feed_event(tw_escpos *d, int dots, int64_t value)
{
    uint8_t *p;
    flush(d);
    p = event_open(d, 0);
    if (!p)
        return;
    p = HEAD(p, "printer.feed", 1);
    p = dots ? KEY(p, "dots") : KEY(p, "lines");
    p = tw_mpw_int(p, value);
    event_close(d, p);
}

/* Acts on a complete header h[0..hlen) that started at absolute offset `off`. */
static void dispatch(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off)
{
    const struct command *c = &commands_of(h[0])[h[1]];
    uint8_t v = hlen > 2 ? h[2] : 0;

    switch ((enum action)c->action) {
    case A_UNKNOWN:
        emit_error(d, TW_ERR_UNKNOWN_COMMAND, off, h, 2);
        break;
    case A_NOTHING:
        break;
    case A_PRINT:
        flush(d);
        break;
    case A_ESC_MODE:
        esc_print_mode(d, v);
        break;
    case A_BOLD:
        set_style_bit(d, ST_BOLD, v & 1);
        break;
    case A_DOUBLE_STRIKE:
        set_style_bit(d, ST_DOUBLE_STRIKE, v & 1);
        break;
    case A_UPSIDE_DOWN:
        set_style_bit(d, ST_UPSIDE_DOWN, v & 1);
        break;
    case A_INVERT:
        set_style_bit(d, ST_INVERT, v & 1);
        break;
    case A_UNDERLINE:
        if (v == 0 || v == 1 || v == 2 || v == 48 || v == 49 || v == 50)
            set_style_field(d, ST_UNDERLINE_MASK, ST_UNDERLINE_SHIFT, v & 3);
        else
            bad_parameter(d, h, hlen, off);
        break;
    case A_ROTATE:
        if (v == 0 || v == 48)
            set_style_bit(d, ST_ROTATE, 0);
        else if (v == 1 || v == 2 || v == 49 || v == 50)
            set_style_bit(d, ST_ROTATE, 1);
        else
            bad_parameter(d, h, hlen, off);
        break;
    case A_FONT: {
        uint8_t font = font_of(v);
        if (font)
            set_style_field(d, ST_FONT_MASK, ST_FONT_SHIFT, font - 1u);
        else
            bad_parameter(d, h, hlen, off);
        break;
    }
    case A_CHAR_SIZE:
        if ((v >> 4) > 7 || (v & 15) > 7) {
            bad_parameter(d, h, hlen, off);
            break;
        }
        set_style_field(d, ST_WIDTH_MASK, ST_WIDTH_SHIFT, v >> 4);
        set_style_field(d, ST_HEIGHT_MASK, ST_HEIGHT_SHIFT, v & 15);
        break;
    case A_ALIGN: {
        int align = align_of(v);
        if (!align)
            bad_parameter(d, h, hlen, off);
        else if (!d->line.ncp && !d->group_in_line)
            d->align = (uint8_t)(align - 1);
        break;
    }
    case A_INIT:
        emit_group(d);
        reset_printer(d);
        {
            uint8_t *p = event_open(d, 0);
            if (p)
                event_close(d, HEAD(p, "printer.init", 0));
        }
        break;
    case A_CODE_TABLE:
        if (d->codepage_index[v] < 0)
            emit_error(d, TW_ERR_UNKNOWN_CODE_TABLE, off, h, hlen);
        else
            d->codepage = d->codepages + (size_t)d->codepage_index[v] * 128;
        break;
    case A_CHARSET:
        if (d->charset_index[v] < 0)
            emit_error(d, TW_ERR_UNKNOWN_CHARSET, off, h, hlen);
        else
            select_charset(d, v);
        break;
    case A_FEED_LINES:
        feed_event(d, 0, v);
        break;
    case A_FEED_LINES_BACK:
        feed_event(d, 0, -(int64_t)v);
        break;
    case A_FEED_DOTS:
        feed_event(d, 1, v);
        break;
    case A_FEED_DOTS_BACK:
        feed_event(d, 1, -(int64_t)v);
        break;
    case A_PARTIAL_CUT:
        flush(d);
        emit_cut(d, 1, -1);
        break;
    case A_DRAWER_STATUS:
        STATUS_REQUEST(d, "drawer", v);
        break;
    case A_PAPER_STATUS:
        STATUS_REQUEST(d, "paper_sensor", 0);
        break;
    case A_SELECT_PERIPHERAL:
        select_peripheral(d, v);
        break;
    case A_ESC_BUZZER:
        BUZZER(d, "ESC B", h + 2, 2);
        break;
    case A_KICK: {
        int pin = kick_pin(v);
        if (!pin)
            bad_parameter(d, h, hlen, off);
        else
            emit_kick(d, pin, h[3] * 2u, h[4] * 2u);
        break;
    }
    case A_BITIMAGE:
        esc_bitimage(d, h, off);
        break;
    case A_TABS:
        keep_command(d, h, hlen, off);
        d->tab_prev = 0;
        d->tab_count = 0;
        d->cont = CONT_TABS;
        break;
    case A_USER_CHARS:
        esc_user_chars(d, h, off);
        break;
    case A_PAREN:
        paren(d, h, hlen, off);
        break;
    case A_PRINT_DOWNLOADED:
        if (d->downloaded.present) {
            flush(d);
            print_stored(d, &d->downloaded, (struct name)NAME("downloaded"));
        }
        break;
    case A_DEFINE_DOWNLOADED:
        gs_define_downloaded(d, h, off);
        break;
    case A_ID_REQUEST:
        STATUS_REQUEST(d, "id", v);
        break;
    case A_STATUS_REQUEST:
        switch (v) {
        case 1: case 49: STATUS_REQUEST(d, "paper_sensor", v); break;
        case 2: case 50: STATUS_REQUEST(d, "drawer", v); break;
        case 4: case 52: STATUS_REQUEST(d, "ink", v); break;
        default: bad_parameter(d, h, hlen, off); break;
        }
        break;
    case A_ASB:
        STATUS_REQUEST(d, "asb", v);
        break;
    case A_ASB_INK:
        STATUS_REQUEST(d, "asb_ink", v);
        break;
    case A_COUNTER:
        if (v == 0x32)
            STATUS_REQUEST(d, "counter", h[4] | h[5] << 8);
        else if (v != 0x30)
            bad_parameter(d, h, 3, off);
        break;
    case A_CUT: {
        int with_feed, mode = cut_mode(v, &with_feed);
        if (!mode) {
            bad_parameter(d, h, 3, off);
            break;
        }
        flush(d);
        emit_cut(d, mode == 2, hlen == 4 ? h[3] : -1);
        break;
    }
    case A_BARCODE:
        gs_barcode(d, h, off);
        break;
    case A_RASTER:
        gs_raster(d, h, off);
        break;
    case A_GS8: {
        uint32_t length;
        if (v != 0x4c) {
            bad_parameter(d, h, 3, off);
            break;
        }
        length = (uint32_t)h[3] | (uint32_t)h[4] << 8 | (uint32_t)h[5] << 16 | (uint32_t)h[6] << 24;
        graphics(d, h, hlen, off, h + 7, hlen - 7, length - (hlen - 7));
        break;
    }
    case A_KANJI_ON:
        d->kanji = 1;
        break;
    case A_KANJI_OFF:
        d->kanji = 0;
        break;
    case A_NV_PRINT: {
        char key[4];
        int len = 0;
        flush(d);
        if (v >= 100)
            key[len++] = (char)('0' + v / 100);
        if (v >= 10)
            key[len++] = (char)('0' + v / 10 % 10);
        key[len++] = (char)('0' + v % 10);
        emit_image_key(d, (struct name)NAME("nv"), (const uint8_t *)key, (size_t)len, 0);
        break;
    }
    case A_USER_KANJI:
        skip_payload(d, 72, h, hlen, off);
        break;
    case A_DEFINE_BMP:
        define_bmp(d, h, hlen, off);
        break;
    case A_NV_MEMORY:
        if (v == 0x31)
            skip_payload(d, (uint64_t)h[8] | (uint64_t)h[9] << 8, h, hlen, off);
        else if (v != 0x32)
            bad_parameter(d, h, 3, off);
        break;
    case A_NV_DEFINE:
        keep_command(d, h, hlen, off);
        d->nv_left = v;
        d->nv_block_len = 0;
        d->skip = 0;
        if (v)
            d->cont = CONT_NV_DEFINE;
        break;
    case A_DLE_EOT:
        dle_eot(d, h, off);
        break;
    case A_DLE_DC4:
        dle_dc4(d, h, off);
        break;
    }
}

/* ------------------------------------------------------------------------------------------ to_device walk */

static void hold_header(tw_escpos *d, const uint8_t *p, size_t n)
{
    d->hold_off = offset_of(d, p);
    memcpy(d->hold, p, n);
    d->hold_len = n;
}

static void dispatch_deselected(tw_escpos *d, const uint8_t *h, size_t hlen, uint64_t off)
{
    if (hlen == 1) {
        if (d->display_on)
            tw_display_model_feed(d->display, h, 1, off, d->io.out);
        return;
    }
    if (h[0] == ESC) {
        select_peripheral(d, h[2]);
        return;
    }
    dispatch(d, h, hlen, off);
}

/* Completes the held header with bytes from the input (without consuming more than the header needs). */
static const uint8_t *resume_header(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    uint8_t tmp[2 * TW_ESCPOS_MAX_HEADER];
    size_t have = d->hold_len, avail = (size_t)(end - p);
    size_t take = avail < sizeof(tmp) - have ? avail : sizeof(tmp) - have;
    size_t need;

    memcpy(tmp, d->hold, have);
    memcpy(tmp + have, p, take);
    need = d->deselected ? deselected_need(tmp, have + take) : header_need(tmp, have + take);
    if (need > have + take) {
        memcpy(d->hold + have, p, take);
        d->hold_len = have + take;
        return p + take;
    }
    d->hold_len = 0;
    if (d->deselected)
        dispatch_deselected(d, tmp, need, d->hold_off);
    else
        dispatch(d, tmp, need, d->hold_off);
    return p + (need - have);
}

static const uint8_t *walk_deselected(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        size_t avail, need;
        if (*p != ESC && *p != DLE) {
            const uint8_t *q = p + 1;
            while (q < end && *q != ESC && *q != DLE)
                q++;
            if (d->display_on)
                tw_display_model_feed(d->display, p, (size_t)(q - p), offset_of(d, p), d->io.out);
            p = q;
            continue;
        }
        avail = (size_t)(end - p);
        need = deselected_need(p, avail);
        if (need > avail) {
            hold_header(d, p, avail);
            return end;
        }
        dispatch_deselected(d, p, need, offset_of(d, p));
        p += need;
        if (!d->deselected || d->cont)
            break;
    }
    return p;
}

static void finish_lead(tw_escpos *d, uint8_t t)
{
    d->lead_pending = 0;
    if (t >= 0x40) {
        uint16_t cp = d->kanji_double[(size_t)(d->lead - 0x80) * 256 + t];
        add_char(d, cp ? cp : REPLACEMENT, d->lead_off);
    } else {
        add_char(d, REPLACEMENT, d->lead_off);
    }
}

/* The byte after a Kanji lead byte that ended the previous feed: consumed only when it is a trail byte. */
static const uint8_t *resume_lead(tw_escpos *d, const uint8_t *p)
{
    uint8_t t = *p;
    finish_lead(d, t);
    return t >= 0x40 ? p + 1 : p;
}

/* Length of the run of bytes 0x20..0x7f at p (at most n). Eight bytes at a time: ((w - 0x2020..) | w) has a top
 * bit set somewhere iff some byte is >= 0x80 or < 0x20 — a borrow may also set the top bit of the byte above the
 * first bad one, which is harmless because the test only asks whether the whole word is clean (the exact end of
 * the run is then found byte by byte). Byte order does not change that answer. */
static size_t ascii_run(const uint8_t *p, size_t n)
{
    const uint64_t spaces = UINT64_C(0x2020202020202020), tops = UINT64_C(0x8080808080808080);
    size_t i = 0;
    while (n - i >= 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (((w - spaces) | w) & tops)
            break;
        i += 8;
    }
    while (i < n && (uint8_t)(p[i] - 0x20) < 0x60)
        i++;
    return i;
}

/* Text bytes (>= 0x20) from p on (section 4); stops at a control byte or with a Kanji lead byte at the end. */
static const uint8_t *walk_text(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint8_t b = *p;
        if (b < 0x80) {
            if (b < 0x20)
                break;
            if (d->charset_is_ascii) {
                size_t n = ascii_run(p, (size_t)(end - p));
                add_ascii(d, p, n, offset_of(d, p));
                p += n;
            } else {
                add_char(d, d->charset[b], offset_of(d, p));
                p++;
            }
        } else if (!d->kanji) {
            add_char(d, d->codepage[b - 0x80], offset_of(d, p));
            p++;
        } else if (d->kanji_single[b - 0x80]) {
            add_char(d, d->kanji_single[b - 0x80], offset_of(d, p));
            p++;
        } else if (p + 1 < end) {
            d->lead = b;
            d->lead_off = offset_of(d, p);
            finish_lead(d, p[1]);
            p += p[1] >= 0x40 ? 2 : 1;
        } else {
            d->lead_pending = 1;
            d->lead = b;
            d->lead_off = offset_of(d, p);
            p++;
        }
    }
    return p;
}

static void control(tw_escpos *d, uint8_t b, uint64_t off)
{
    switch (b) {
    case 0x0a:
        line_feed(d);
        break;
    case 0x09:
        add_char(d, 0x09, off);
        break;
    case 0x0c:
        flush(d);
        break;
    case 0x07:
        BUZZER(d, "BEL", (const uint8_t *)"", 0);
        break;
    case 0x0d: case 0x18: case 0x00:
        break;
    default:
        emit_error(d, TW_ERR_UNKNOWN_CONTROL, off, &b, 1);
        break;
    }
}

static const uint8_t *walk_ground(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint8_t b = *p;
        if (b >= 0x20) {
            p = walk_text(d, p, end);
            if (d->lead_pending)
                break;
        } else if (b == ESC || b == GS || b == FS || b == DLE) {
            size_t avail = (size_t)(end - p);
            size_t need = header_need(p, avail);
            if (need > avail) {
                hold_header(d, p, avail);
                return end;
            }
            dispatch(d, p, need, offset_of(d, p));
            p += need;
            if (d->cont || d->deselected || d->io.failed)
                break;
        } else {
            control(d, b, offset_of(d, p));
            p++;
        }
    }
    return p;
}

static void walk_to_device(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end && !d->io.failed) {
        if (d->hold_len)
            p = resume_header(d, p, end);
        else if (d->cont)
            p = run_cont(d, p, end);
        else if (d->lead_pending)
            p = resume_lead(d, p);
        else if (d->deselected)
            p = walk_deselected(d, p, end);
        else
            p = walk_ground(d, p, end);
    }
}

/* ------------------------------------------------------------------------------------------ from_device */

/* Which outstanding requests a reply answers (section 9). */
enum reply_kind {
    REPLY_DLE_EOT,  /* a DLE EOT n status byte */
    REPLY_ONE_BYTE, /* GS r, ESC u / v, GS I with n < 65 */
    REPLY_ID_BLOCK  /* GS I with n >= 65: a 5f / 3d text block */
};

static int answers(enum reply_kind reply, const struct request *r)
{
    switch (reply) {
    case REPLY_DLE_EOT:
        return r->kind == RQ_PRINTER || r->kind == RQ_OFFLINE || r->kind == RQ_ERROR || r->kind == RQ_PAPER;
    case REPLY_ONE_BYTE:
        return r->kind == RQ_PAPER_SENSOR || r->kind == RQ_DRAWER || r->kind == RQ_INK ||
               (r->kind == RQ_ID && r->n < 65);
    default:
        return r->kind == RQ_ID && r->n >= 65;
    }
}

/* Removes the oldest request the reply answers into *got; 0 when there is none. */
static int take_request(tw_escpos *d, enum reply_kind reply, struct request *got)
{
    unsigned i;
    for (i = 0; i < d->nrequests; i++) {
        struct request *r = &d->requests[i];
        if (answers(reply, r)) {
            *got = *r;
            memmove(r, r + 1, (d->nrequests - i - 1) * sizeof(*r));
            d->nrequests--;
            return 1;
        }
    }
    return 0;
}

static struct name paper_of(int out, int near_end)
{
    static const struct name out_name = NAME("out"), near_end_name = NAME("near_end"), ok_name = NAME("ok");
    return out ? out_name : near_end ? near_end_name : ok_name;
}

/* printer.status / printer.asb: kind, the fields the reply carries, raw. `fields` holds, in order, which of
 * online, cover_open, paper, drawer_open, error are present. */
#define F_ONLINE 1
#define F_COVER 2
#define F_PAPER 4
#define F_DRAWER 8
#define F_ERROR 16
struct status_fields {
    unsigned present;
    int online, cover_open, drawer_open, error;
    struct name paper;
};

static void emit_status(tw_escpos *d, int asb, struct name kind, const struct status_fields *f, const uint8_t *raw,
                        size_t raw_len)
{
    unsigned nkeys = 2, bit;
    uint8_t *p = event_open(d, raw_len);
    if (!p)
        return;
    for (bit = 1; bit <= F_ERROR; bit <<= 1)
        nkeys += (f->present & bit) != 0;
    p = asb ? HEAD(p, "printer.asb", nkeys) : HEAD(p, "printer.status", nkeys);
    p = KEY(p, "kind");
    p = NAME_STR(p, kind);
    if (f->present & F_ONLINE) {
        p = KEY(p, "online");
        p = tw_mpw_bool(p, f->online);
    }
    if (f->present & F_COVER) {
        p = KEY(p, "cover_open");
        p = tw_mpw_bool(p, f->cover_open);
    }
    if (f->present & F_PAPER) {
        p = KEY(p, "paper");
        p = NAME_STR(p, f->paper);
    }
    if (f->present & F_DRAWER) {
        p = KEY(p, "drawer_open");
        p = tw_mpw_bool(p, f->drawer_open);
    }
    if (f->present & F_ERROR) {
        p = KEY(p, "error");
        p = tw_mpw_bool(p, f->error);
    }
    p = KEY(p, "raw");
    p = tw_mpw_bin(p, raw, raw_len);
    event_close(d, p);
    if (f->present & F_DRAWER) {
        /* drawer.status right after the reply that carries the drawer bit (section 9): every such reply */
        p = event_open(d, 0);
        if (!p)
            return;
        p = HEAD(p, "drawer.status", 1);
        p = KEY(p, "open");
        p = tw_mpw_bool(p, f->drawer_open != d->drawer_low);
        event_close(d, p);
    }
}

/* printer.info {kind, n, value}: value is an int, a str (latin-1 text) or bytes */
enum info_value { INFO_INT, INFO_LATIN1, INFO_BYTES };

static void emit_info(tw_escpos *d, struct name kind, int64_t n, enum info_value type, int64_t value,
                      const uint8_t *bytes, size_t len)
{
    uint8_t *p = event_open(d, 2 * len);
    if (!p)
        return;
    p = HEAD(p, "printer.info", 3);
    p = KEY(p, "kind");
    p = NAME_STR(p, kind);
    p = KEY(p, "n");
    p = tw_mpw_int(p, n);
    p = KEY(p, "value");
    if (type == INFO_INT)
        p = tw_mpw_int(p, value);
    else if (type == INFO_LATIN1)
        p = w_latin1(p, bytes, len);
    else
        p = tw_mpw_bin(p, bytes, len);
    event_close(d, p);
}

/* A DLE EOT n reply (b & 0x93 == 0x12), decoded with the oldest DLE EOT 1-4 request. */
static void dle_eot_reply(tw_escpos *d, uint8_t b)
{
    struct request req;
    struct status_fields f = {0, 0, 0, 0, 0, {NULL, 0}};
    struct name kind = NAME("unknown");
    if (take_request(d, REPLY_DLE_EOT, &req)) {
        kind = request_names[req.kind];
        switch (req.kind) {
        case RQ_PRINTER:
            f.present = F_ONLINE | F_DRAWER;
            f.online = !(b & 0x08);
            f.drawer_open = (b & 0x04) != 0;
            break;
        case RQ_OFFLINE:
            f.present = F_ONLINE | F_COVER | F_PAPER | F_ERROR;
            f.online = !(b & 0x6c);
            f.cover_open = (b & 0x04) != 0;
            f.paper = paper_of(b & 0x20, 0);
            f.error = (b & 0x40) != 0;
            break;
        case RQ_ERROR:
            f.present = F_ERROR;
            f.error = (b & 0x6c) != 0;
            break;
        default:
            f.present = F_PAPER;
            f.paper = paper_of(b & 0x60, b & 0x0c);
            break;
        }
    }
    emit_status(d, 0, kind, &f, &b, 1);
}

/* A one-byte reply 0xx0xxxx: GS r, ESC u/v, GS I n < 65. */
static void single_reply(tw_escpos *d, uint8_t b)
{
    struct request req;
    struct status_fields f = {0, 0, 0, 0, 0, {NULL, 0}};
    if (!take_request(d, REPLY_ONE_BYTE, &req)) {
        emit_status(d, 0, (struct name)NAME("unknown"), &f, &b, 1);
        return;
    }
    switch (req.kind) {
    case RQ_ID:
        emit_info(d, request_names[RQ_ID], req.n, INFO_INT, b, NULL, 0);
        return;
    case RQ_PAPER_SENSOR:
        f.present = F_PAPER;
        f.paper = paper_of(b & 0x0c, b & 0x03);
        break;
    case RQ_DRAWER:
        f.present = F_DRAWER;
        f.drawer_open = b & 1;
        break;
    default:
        break;
    }
    emit_status(d, 0, request_names[req.kind], &f, &b, 1);
}

static void emit_asb(tw_escpos *d, const uint8_t body[4])
{
    struct status_fields f;
    f.present = F_ONLINE | F_COVER | F_PAPER | F_DRAWER | F_ERROR;
    f.online = !(body[0] & 0x08);
    f.cover_open = (body[0] & 0x20) != 0;
    f.paper = paper_of(body[2] & 0x0c, body[2] & 0x03);
    f.drawer_open = (body[0] & 0x04) != 0;
    f.error = (body[1] & 0x6c) != 0;
    emit_status(d, 1, request_names[RQ_ASB], &f, body, 4);
}

/* header ... NUL: 37 id data, 5f / 3d identification text. */
static void block_reply(tw_escpos *d, uint8_t header, const uint8_t *body, size_t n)
{
    struct request req;
    if (header == 0x37) {
        if (n)
            emit_info(d, (struct name)NAME("response"), body[0], INFO_BYTES, 0, body + 1, n - 1);
        else
            emit_info(d, (struct name)NAME("response"), 0, INFO_BYTES, 0, body, 0);
    } else if (take_request(d, REPLY_ID_BLOCK, &req)) {
        emit_info(d, request_names[RQ_ID], req.n, INFO_LATIN1, 0, body, n);
    } else {
        emit_info(d, (struct name)NAME("unknown"), 0, INFO_LATIN1, 0, body, n);
    }
}

static void reply_raw(tw_escpos *d, uint8_t b)
{
    if (d->reply_raw_len < TW_MAX_ERROR_RAW)
        d->reply_raw[d->reply_raw_len++] = b;
}

static void reply_start(tw_escpos *d, enum reply_state state, uint8_t b, uint64_t off)
{
    d->reply = state;
    d->reply_off = off;
    d->reply_header = b;
    d->reply_body[0] = b;
    d->reply_body_len = 1;
    d->reply_span = 1;
    d->reply_data_len = 0;
    d->reply_raw_len = 0;
    reply_raw(d, b);
}

static void reply_fail(tw_escpos *d)
{
    d->reply = RP_GROUND;
    emit_error(d, TW_ERR_UNKNOWN_REPLY, d->reply_off, &d->reply_header, 1);
}

static void reply_byte(tw_escpos *d, uint8_t b, uint64_t off);

/* An ASB that broke its pattern: its header byte is reported and the bytes after it are decoded again; they are
 * XON/XOFF (no event) and 0xx0xxxx bytes, which are one-byte replies. */
static void asb_fail(tw_escpos *d)
{
    uint8_t body[4];
    unsigned i, n = d->reply_body_len;
    memcpy(body, d->reply_body, n);
    reply_fail(d);
    for (i = 1; i < n; i++)
        single_reply(d, body[i]);
}

static void reply_ground(tw_escpos *d, uint8_t b, uint64_t off)
{
    if (b == 0x11 || b == 0x13)
        return; /* XON / XOFF */
    if ((b & 0x93) == 0x12)
        dle_eot_reply(d, b);
    else if ((b & 0x93) == 0x10)
        reply_start(d, RP_ASB, b, off);
    else if ((b & 0x90) == 0)
        single_reply(d, b);
    else if (b == 0x5f || b == 0x3d || b == 0x37)
        reply_start(d, RP_BLOCK, b, off);
    else if (b == 0x39)
        reply_start(d, RP_ASB_EXT, b, off);
    else if (b == 0x3b)
        reply_start(d, RP_POWER_OFF, b, off);
    else
        emit_error(d, TW_ERR_UNKNOWN_REPLY, off, &b, 1);
}

/* One printer byte at absolute offset `off`. A reply that turns out not to match reports its header byte and
 * the bytes after it are decoded again from the ground state. */
static void reply_byte(tw_escpos *d, uint8_t b, uint64_t off)
{
    switch (d->reply) {
    case RP_GROUND:
        reply_ground(d, b, off);
        return;
    case RP_ASB:
        /* header 0xx1xx00, then three 0xx0xxxx bytes; XON/XOFF between them are skipped */
        if (b & 0x90 && b != 0x11 && b != 0x13) {
            asb_fail(d);
            reply_byte(d, b, off);
            return;
        }
        reply_raw(d, b);
        d->reply_span++;
        if (b != 0x11 && b != 0x13) {
            d->reply_body[d->reply_body_len++] = b;
            if (d->reply_body_len == 4) {
                d->reply = RP_GROUND;
                emit_asb(d, d->reply_body);
                return;
            }
        }
        if (d->reply_span == TW_MAX_ASB_SPAN)
            asb_fail(d);
        return;
    case RP_BLOCK:
        if (b == 0) {
            d->reply = RP_GROUND;
            block_reply(d, d->reply_header, d->reply_data, d->reply_data_len);
            return;
        }
        if (d->reply_data_len == TW_MAX_INFO) {
            uint8_t data[TW_MAX_INFO];
            uint64_t start = d->reply_off + 1;
            unsigned i;
            memcpy(data, d->reply_data, TW_MAX_INFO);
            reply_fail(d);
            for (i = 0; i < TW_MAX_INFO; i++)
                reply_byte(d, data[i], start + i);
            reply_byte(d, b, off);
            return;
        }
        reply_raw(d, b);
        d->reply_data[d->reply_data_len++] = b;
        return;
    case RP_ASB_EXT:
        reply_raw(d, b);
        d->reply_body[d->reply_body_len++] = b;
        if (d->reply_body_len == 4) {
            struct status_fields none = {0, 0, 0, 0, 0, {NULL, 0}};
            d->reply = RP_GROUND;
            emit_status(d, 1, (struct name)NAME("asb_ext"), &none, d->reply_body, 4);
        }
        return;
    case RP_POWER_OFF: {
        static const uint8_t power_off[3] = {0x3b, 0x30, 0x00};
        unsigned have = d->reply_body_len;
        if (b != power_off[have]) {
            reply_fail(d);
            if (have == 2)
                reply_byte(d, 0x30, off - 1);
            reply_byte(d, b, off);
            return;
        }
        reply_raw(d, b);
        d->reply_body[d->reply_body_len++] = b;
        if (d->reply_body_len == 3) {
            struct status_fields f = {F_ONLINE, 0, 0, 0, 0, {NULL, 0}};
            d->reply = RP_GROUND;
            emit_status(d, 0, (struct name)NAME("power_off"), &f, power_off, 3);
        }
        return;
    }
    }
}

static void walk_from_device(tw_escpos *d, const uint8_t *p, const uint8_t *end)
{
    for (; p < end; p++)
        reply_byte(d, *p, offset_of(d, p));
}

/* ------------------------------------------------------------------------------------------ API */

static int valid_index(const int16_t *index, uint32_t nslots)
{
    unsigned i;
    for (i = 0; i < 256; i++)
        if (index[i] < -1 || (index[i] >= 0 && (uint32_t)index[i] >= nslots))
            return 0;
    return 1;
}

static int valid_config(const tw_escpos_config *cfg)
{
    if (!cfg || (cfg->direction != TW_ESCPOS_TO_DEVICE && cfg->direction != TW_ESCPOS_FROM_DEVICE))
        return 0;
    if (!cfg->codepage_index || !cfg->codepages || !cfg->charset_index || !cfg->charsets || !cfg->kanji_single ||
        !cfg->kanji_double)
        return 0;
    if (!valid_index(cfg->codepage_index, cfg->n_codepages) || !valid_index(cfg->charset_index, cfg->n_charsets))
        return 0;
    if (cfg->default_codepage > 255 || cfg->default_charset > 255)
        return 0;
    if (cfg->drawer_open_level != TW_ESCPOS_DRAWER_HIGH && cfg->drawer_open_level != TW_ESCPOS_DRAWER_LOW)
        return 0;
    return cfg->codepage_index[cfg->default_codepage] >= 0 && cfg->charset_index[cfg->default_charset] >= 0;
}

int tw_escpos_check_config(const tw_escpos_config *cfg)
{
    return valid_config(cfg) ? TW_OK : TW_ERR_BAD_CONFIG;
}

tw_escpos *tw_escpos_new(const tw_escpos_config *cfg)
{
    tw_escpos *d;
    if (!valid_config(cfg))
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->to_device = cfg->direction == TW_ESCPOS_TO_DEVICE;
    d->images = cfg->images != 0;
    d->drawer_low = cfg->drawer_open_level == TW_ESCPOS_DRAWER_LOW;
    d->codepage_index = cfg->codepage_index;
    d->codepages = cfg->codepages;
    d->charset_index = cfg->charset_index;
    d->charsets = cfg->charsets;
    d->default_codepage = cfg->default_codepage;
    d->default_charset = cfg->default_charset;
    d->kanji_single = cfg->kanji_single;
    d->kanji_double = cfg->kanji_double;
    find_ascii_charsets(d);
    reset_printer(d);
    if (d->to_device) {
        tw_display_config dc;
        memset(&dc, 0, sizeof(dc));
        dc.dialect = TW_DISPLAY_EPSON;
        dc.columns = 20;
        dc.rows = 2;
        dc.codepage_index = cfg->codepage_index;
        dc.codepages = cfg->codepages;
        dc.n_codepages = cfg->n_codepages;
        dc.charset_index = cfg->charset_index;
        dc.charsets = cfg->charsets;
        dc.n_charsets = cfg->n_charsets;
        dc.default_codepage = cfg->default_codepage;
        dc.default_charset = cfg->default_charset;
        d->display = tw_display_model_new(&dc);
        if (!d->display) {
            free(d);
            return NULL;
        }
    }
    return d;
}

static void release_buffers(tw_escpos *d)
{
    buf_free(&d->group.rows);
    buf_free(&d->graphics.rows);
    buf_free(&d->downloaded.rows);
    buf_free(&d->raster);
    buf_free(&d->stripe);
}

void tw_escpos_free(tw_escpos *d)
{
    if (!d)
        return;
    release_buffers(d);
    tw_display_model_free(d->display);
    free(d);
}

int tw_escpos_feed(tw_escpos *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len) {
        if (d->to_device)
            walk_to_device(d, data, data + len);
        else
            walk_from_device(d, data, data + len);
    }
    return tw_stream_end(&d->io, len);
}

int tw_escpos_close(tw_escpos *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    if (d->to_device) {
        if (d->lead_pending) {
            d->lead_pending = 0;
            add_char(d, REPLACEMENT, d->lead_off);
        }
        if (d->hold_len)
            emit_error(d, TW_ERR_TRUNCATED, d->hold_off, d->hold, d->hold_len);
        else if (d->cont)
            emit_error(d, TW_ERR_TRUNCATED, d->cmd_off, d->cmd_hdr, d->cmd_hdr_len);
        d->hold_len = 0;
        d->cont = CONT_NONE;
        emit_group(d);
        if (d->line.ncp)
            emit_line(d);
        tw_display_model_close(d->display, d->io.out);
    } else if (d->reply != RP_GROUND) {
        emit_error(d, TW_ERR_TRUNCATED, d->reply_off, d->reply_raw, d->reply_raw_len);
        d->reply = RP_GROUND;
    }
    release_buffers(d); /* a closed decoder holds no image memory until it is freed */
    return tw_stream_end(&d->io, 0);
}

int tw_escpos_request_kind(const char *name)
{
    int k;
    for (k = 0; k < RQ_OTHER; k++)
        if (strcmp(name, request_names[k].s) == 0)
            return k;
    return RQ_OTHER;
}

int tw_escpos_note_request(tw_escpos *d, int kind, int64_t n)
{
    if (kind < 0 || kind >= RQ_COUNT)
        kind = RQ_OTHER;
    if (d->nrequests == TW_MAX_REQUESTS) {
        memmove(d->requests, d->requests + 1, (TW_MAX_REQUESTS - 1) * sizeof(d->requests[0]));
        d->nrequests--;
    }
    d->requests[d->nrequests].kind = (uint8_t)kind;
    d->requests[d->nrequests].n = n;
    d->nrequests++;
    return TW_OK;
}
