/* Customer pole display decoder (docs/protocols/display.md). See display.h; the Python twin is
 * protocols/display/reference.py. */
#include "display.h"

#include <stdlib.h>
#include <string.h>

#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"

#define ESC 0x1B
#define US 0x1F
#define CR 0x0D
#define BLANK 0x20
#define CELLS (TW_MAX_DISPLAY_COLUMNS * TW_MAX_DISPLAY_ROWS)

/* ------------------------------------------------------------------------------------ table (§3) */

enum action {
    A_BS, A_HT, A_LF, A_UP, A_HOME, A_LEFTMOST, A_RIGHTMOST, A_BOTTOM, A_CLR, A_CAN, A_POS, A_MODE, A_CURSOR,
    A_BRIGHTNESS, A_BLINK, A_REVERSE, A_CODEPAGE, A_CHARSET, A_INIT, A_SELECT, A_DEFINE, A_USER_CHARS,
    A_CANCEL_USER, A_STRING, A_IGNORE
};

#define E TW_DISPLAY_EPSON
#define C TW_DISPLAY_CD5220
#define B (E | C)
#define C1(d, a, n, act, arg) {d, 1, {a, 0, 0}, n, act, arg}
#define C2(d, a, b, n, act, arg) {d, 2, {a, b, 0}, n, act, arg}
#define C3(d, a, b, c, n, act, arg) {d, 3, {a, b, c}, n, act, arg}
/* the order of protocols/display/tables.py COMMANDS */
static const tw_display_command COMMANDS[] = {
    C1(B, 0x08, 0, A_BS, 0), C1(B, 0x09, 0, A_HT, 0), C1(B, 0x0a, 0, A_LF, 0), C1(B, 0x0b, 0, A_HOME, 0),
    C1(B, 0x0c, 0, A_CLR, 0), C1(B, 0x0d, 0, A_LEFTMOST, 0), C1(B, 0x18, 0, A_CAN, 0),
    C2(B, 0x1b, 0x40, 0, A_INIT, 0), C2(B, 0x1b, 0x74, 1, A_CODEPAGE, 0), C2(B, 0x1b, 0x52, 1, A_CHARSET, 0),
    C2(B, 0x1b, 0x26, 3, A_DEFINE, 0), C2(B, 0x1b, 0x25, 1, A_USER_CHARS, 0),
    C2(B, 0x1b, 0x3f, 1, A_CANCEL_USER, 0),
    C2(B, 0x1f, 0x01, 0, A_MODE, 1), C2(B, 0x1f, 0x02, 0, A_MODE, 2), C2(B, 0x1f, 0x03, 0, A_MODE, 3),
    C2(B, 0x1f, 0x0a, 0, A_UP, 0), C2(B, 0x1f, 0x0d, 0, A_RIGHTMOST, 0), C2(B, 0x1f, 0x42, 0, A_BOTTOM, 0),
    C2(B, 0x1f, 0x45, 1, A_BLINK, 0),
    C2(E, 0x1b, 0x3d, 1, A_SELECT, 0), C2(E, 0x1f, 0x24, 2, A_POS, 0), C2(E, 0x1f, 0x43, 1, A_CURSOR, 0),
    C2(E, 0x1f, 0x58, 1, A_BRIGHTNESS, 0), C2(E, 0x1f, 0x72, 1, A_REVERSE, 0),
    C2(E, 0x1f, 0x2e, 1, A_IGNORE, 0), C2(E, 0x1f, 0x2c, 1, A_IGNORE, 0), C2(E, 0x1f, 0x3b, 1, A_IGNORE, 0),
    C2(E, 0x1f, 0x23, 2, A_IGNORE, 0),
    C2(C, 0x1b, 0x11, 0, A_MODE, 1), C2(C, 0x1b, 0x12, 0, A_MODE, 2), C2(C, 0x1b, 0x13, 0, A_MODE, 3),
    C3(C, 0x1b, 0x51, 0x41, 0, A_STRING, 0), C3(C, 0x1b, 0x51, 0x42, 0, A_STRING, 1),
    C3(C, 0x1b, 0x51, 0x44, 0, A_STRING, 2),
    C3(C, 0x1b, 0x5b, 0x44, 0, A_BS, 0), C3(C, 0x1b, 0x5b, 0x43, 0, A_HT, 0), C3(C, 0x1b, 0x5b, 0x41, 0, A_UP, 0),
    C3(C, 0x1b, 0x5b, 0x42, 0, A_LF, 0), C3(C, 0x1b, 0x5b, 0x48, 0, A_HOME, 0),
    C3(C, 0x1b, 0x5b, 0x4c, 0, A_LEFTMOST, 0), C3(C, 0x1b, 0x5b, 0x52, 0, A_RIGHTMOST, 0),
    C3(C, 0x1b, 0x5b, 0x4b, 0, A_BOTTOM, 0),
    C2(C, 0x1b, 0x6c, 2, A_POS, 0), C2(C, 0x1b, 0x5f, 1, A_CURSOR, 0), C2(C, 0x1b, 0x2a, 1, A_BRIGHTNESS, 0),
    C2(C, 0x1b, 0x23, 1, A_IGNORE, 0), C2(C, 0x1f, 0x40, 0, A_IGNORE, 0),
};
#undef E
#undef C
#undef B
#define N_COMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

const tw_display_command *tw_display_command_table(unsigned *n)
{
    *n = (unsigned)N_COMMANDS;
    return COMMANDS;
}

/* ------------------------------------------------------------------------------------------- state */

enum { GROUND, COMMAND, STRING, SKIP };

struct tw_display_model {
    uint32_t w, h, n;
    const int16_t *codepage_index, *charset_index;
    const uint16_t *codepages, *charsets;
    uint32_t default_codepage, default_charset;
    const uint16_t *codepage, *charset;
    /* lookup: index into COMMANDS + 1, 0 = none; [0] single control bytes, [1] ESC x, [2] US x, [3] ESC Q x,
     * [4] ESC [ x */
    uint8_t lookup[5][256];
    uint8_t has3[2]; /* the dialect has ESC Q x, ESC [ x commands */
    uint16_t cells[CELLS], shown[CELLS], scratch[CELLS];
    uint8_t dirty[CELLS];
    uint32_t x, y;
    int pending, mode;
    int state;
    uint8_t hdr[8];
    unsigned hlen, n_cmd;
    const tw_display_command *entry;
    uint64_t cmd_off;
    uint16_t text[TW_MAX_DISPLAY_MARQUEE];
    unsigned tlen;
    int line;
    unsigned skip;
};

struct tw_display {
    tw_stream io;
    tw_display_model *m;
    int fresh;
};

static void reset_tables(tw_display_model *m)
{
    m->codepage = m->codepages + (size_t)m->codepage_index[m->default_codepage] * 128;
    m->charset = m->charsets + (size_t)m->charset_index[m->default_charset] * 128;
}

static int valid_index(const int16_t *index, uint32_t n)
{
    unsigned k;
    for (k = 0; k < 256; k++)
        if (index[k] >= (int32_t)n)
            return 0;
    return 1;
}

tw_display_model *tw_display_model_new(const tw_display_config *cfg)
{
    tw_display_model *m;
    unsigned k;
    int bit;
    if (!cfg || !cfg->codepage_index || !cfg->codepages || !cfg->charset_index || !cfg->charsets)
        return NULL;
    if (cfg->columns < 1 || cfg->columns > TW_MAX_DISPLAY_COLUMNS || cfg->rows < 1 || cfg->rows > TW_MAX_DISPLAY_ROWS)
        return NULL;
    if (cfg->dialect != TW_DISPLAY_EPSON && cfg->dialect != TW_DISPLAY_CD5220)
        return NULL;
    if (cfg->default_codepage > 255 || cfg->default_charset > 255 || !valid_index(cfg->codepage_index, cfg->n_codepages) ||
        !valid_index(cfg->charset_index, cfg->n_charsets) || cfg->codepage_index[cfg->default_codepage] < 0 ||
        cfg->charset_index[cfg->default_charset] < 0)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->w = cfg->columns;
    m->h = cfg->rows;
    m->n = m->w * m->h;
    m->codepage_index = cfg->codepage_index;
    m->codepages = cfg->codepages;
    m->charset_index = cfg->charset_index;
    m->charsets = cfg->charsets;
    m->default_codepage = cfg->default_codepage;
    m->default_charset = cfg->default_charset;
    reset_tables(m);
    bit = cfg->dialect;
    for (k = 0; k < N_COMMANDS; k++) {
        const tw_display_command *c = &COMMANDS[k];
        int t;
        if (!(c->dialects & bit))
            continue;
        if (c->len == 1)
            t = 0;
        else if (c->len == 2)
            t = c->bytes[0] == ESC ? 1 : 2;
        else
            t = c->bytes[1] == 0x51 ? 3 : 4;
        m->lookup[t][c->bytes[c->len - 1]] = (uint8_t)(k + 1);
        if (t >= 3)
            m->has3[t - 3] = 1;
    }
    for (k = 0; k < CELLS; k++)
        m->cells[k] = m->shown[k] = BLANK;
    m->mode = 1;
    m->state = GROUND;
    return m;
}

void tw_display_model_free(tw_display_model *m)
{
    free(m);
}

/* ------------------------------------------------------------------------------------------ events */

static void error(tw_display_model *m, int code, uint64_t off, tw_out *out)
{
    tw_emit_error(out, code, off, m->hdr, 1);
}

static void control(tw_out *out, const char *setting, size_t slen, unsigned value)
{
    uint8_t *p = tw_out_room(out, 64);
    if (!p)
        return;
    p = TW_HEAD(p, "display.control", 2);
    p = TW_KEY(p, "setting");
    p = tw_mpw_str(p, setting, slen);
    p = TW_KEY(p, "value");
    p = tw_mpw_uint(p, value);
    tw_out_commit(out, p);
}
#define CONTROL(out, s, v) control((out), (s), sizeof(s) - 1, (v))

void tw_display_model_settle(tw_display_model *m, tw_out *out)
{
    uint8_t line[TW_MAX_DISPLAY_COLUMNS * 3];
    uint32_t r, c;
    uint8_t *p;
    if (memcmp(m->cells, m->shown, m->n * sizeof(uint16_t)) != 0) {
        p = tw_out_room(out, 64);
        if (p) {
            p = TW_HEAD(p, "display.text", 1);
            p = TW_KEY(p, "lines");
            p = tw_mpw_array(p, m->h);
            tw_out_commit(out, p);
        }
        for (r = 0; r < m->h; r++) {
            size_t len = 0;
            unsigned digits = 0;
            for (c = 0; c < m->w; c++) {
                uint16_t cp = m->cells[r * m->w + c];
                if (cp < 0x80) {
                    digits += cp >= '0' && cp <= '9';
                    line[len++] = (uint8_t)cp;
                } else if (cp < 0x800) {
                    line[len++] = (uint8_t)(0xC0 | (cp >> 6));
                    line[len++] = (uint8_t)(0x80 | (cp & 0x3F));
                } else {
                    line[len++] = (uint8_t)(0xE0 | (cp >> 12));
                    line[len++] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
                    line[len++] = (uint8_t)(0x80 | (cp & 0x3F));
                }
            }
            if (digits >= TW_DISPLAY_MASK_DIGITS)
                tw_mp_str_display_scrubbed(out, line, len);
            else /* too few digits to mask: the scrubber would change nothing */
                tw_mp_str(out, (const char *)line, len);
        }
        memcpy(m->shown, m->cells, m->n * sizeof(uint16_t));
    }
    memset(m->dirty, 0, m->n);
}

/* ------------------------------------------------------------------------------------------ grid */

static void set_cell(tw_display_model *m, uint32_t i, uint16_t cp, tw_out *out)
{
    if (m->cells[i] == cp)
        return;
    if (m->dirty[i])
        tw_display_model_settle(m, out);
    m->cells[i] = cp;
    m->dirty[i] = cp != BLANK;
}

/* the grid becomes m->scratch */
static void commit(tw_display_model *m, tw_out *out)
{
    uint32_t i;
    for (i = 0; i < m->n; i++)
        if (m->scratch[i] != m->cells[i] && m->dirty[i]) {
            tw_display_model_settle(m, out);
            break;
        }
    for (i = 0; i < m->n; i++)
        if (m->scratch[i] != m->cells[i]) {
            m->cells[i] = m->scratch[i];
            m->dirty[i] = m->scratch[i] != BLANK;
        }
}

static void fill(uint16_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++)
        p[i] = BLANK;
}

static void scroll_up(tw_display_model *m, tw_out *out)
{
    memcpy(m->scratch, m->cells + m->w, (m->n - m->w) * sizeof(uint16_t));
    fill(m->scratch + m->n - m->w, m->w);
    commit(m, out);
}

static void scroll_down(tw_display_model *m, tw_out *out)
{
    fill(m->scratch, m->w);
    memcpy(m->scratch + m->w, m->cells, (m->n - m->w) * sizeof(uint16_t));
    commit(m, out);
}

static void shift(tw_display_model *m, int left, tw_out *out)
{
    uint16_t *row = m->scratch + m->y * m->w;
    const uint16_t *old = m->cells + m->y * m->w;
    memcpy(m->scratch, m->cells, m->n * sizeof(uint16_t));
    if (left) {
        memcpy(row, old + 1, (m->w - 1) * sizeof(uint16_t));
        row[m->w - 1] = BLANK;
    } else {
        memcpy(row + 1, old, (m->w - 1) * sizeof(uint16_t));
        row[0] = BLANK;
    }
    commit(m, out);
}

/* commit() of the grid with rows first .. first + count - 1 blank (a blank cell is never dirty) */
static void blank_rows(tw_display_model *m, uint32_t first, uint32_t count, tw_out *out)
{
    uint32_t i, start = first * m->w, end = (first + count) * m->w;
    for (i = start; i < end; i++)
        if (m->dirty[i]) { /* dirty cells are never blank: this one changes */
            tw_display_model_settle(m, out);
            break;
        }
    fill(m->cells + start, end - start);
}

static void right(tw_display_model *m, tw_out *out)
{
    if (m->x < m->w - 1) {
        m->x++;
    } else if (m->mode == 3) {
        shift(m, 1, out);
    } else {
        m->x = 0;
        if (m->mode == 2 && m->y == m->h - 1)
            scroll_up(m, out);
        else
            m->y = (m->y + 1) % m->h;
    }
}

static void left(tw_display_model *m, tw_out *out)
{
    if (m->x > 0) {
        m->x--;
    } else if (m->mode == 3) {
        shift(m, 0, out);
    } else {
        m->x = m->w - 1;
        if (m->mode == 2 && m->y == 0)
            scroll_down(m, out);
        else
            m->y = (m->y + m->h - 1) % m->h;
    }
}

static void down(tw_display_model *m, tw_out *out)
{
    if (m->mode == 2 && m->y == m->h - 1)
        scroll_up(m, out);
    else
        m->y = (m->y + 1) % m->h;
}

static void up(tw_display_model *m, tw_out *out)
{
    if (m->mode == 2 && m->y == 0)
        scroll_down(m, out);
    else
        m->y = (m->y + m->h - 1) % m->h;
}

TW_INLINE uint16_t map_byte(const tw_display_model *m, uint8_t b)
{
    return b < 0x80 ? m->charset[b] : m->codepage[b - 0x80];
}

TW_INLINE void put(tw_display_model *m, uint8_t b, tw_out *out)
{
    uint16_t cp = map_byte(m, b);
    if (m->pending) {
        m->pending = 0;
        right(m, out);
    }
    set_cell(m, m->y * m->w + m->x, cp, out);
    if (m->x == m->w - 1)
        m->pending = 1;
    else
        m->x++;
}

static void string_done(tw_display_model *m, tw_out *out)
{
    uint32_t line = m->line == 2 ? 0 : (uint32_t)m->line, k;
    m->state = GROUND;
    if (line >= m->h)
        return;
    memcpy(m->scratch, m->cells, m->n * sizeof(uint16_t));
    for (k = 0; k < m->w; k++)
        m->scratch[line * m->w + k] = k < m->tlen ? m->text[k] : BLANK;
    commit(m, out);
}

/* ------------------------------------------------------------------------------------------ commands */

static void execute(tw_display_model *m, const tw_display_command *e, tw_out *out)
{
    const uint8_t *p = m->hdr + m->n_cmd;
    uint64_t off = m->cmd_off;
    switch (e->action) {
    case A_BS: m->pending = 0; left(m, out); break;
    case A_HT: m->pending = 0; right(m, out); break;
    case A_LF: m->pending = 0; down(m, out); break;
    case A_UP: m->pending = 0; up(m, out); break;
    case A_HOME: m->pending = 0; m->x = m->y = 0; break;
    case A_LEFTMOST: m->pending = 0; m->x = 0; break;
    case A_RIGHTMOST: m->pending = 0; m->x = m->w - 1; break;
    case A_BOTTOM: m->pending = 0; m->x = 0; m->y = m->h - 1; break;
    case A_CLR:
    case A_INIT:
        blank_rows(m, 0, m->h, out);
        m->x = m->y = 0;
        m->pending = 0;
        if (e->action == A_INIT) {
            m->mode = 1;
            reset_tables(m);
        }
        break;
    case A_CAN:
        blank_rows(m, m->y, 1, out);
        m->x = 0;
        m->pending = 0;
        break;
    case A_POS:
        if (p[0] >= 1 && p[0] <= m->w && p[1] >= 1 && p[1] <= m->h) {
            m->x = p[0] - 1u;
            m->y = p[1] - 1u;
            m->pending = 0;
        } else {
            error(m, TW_ERR_BAD_PARAMETER, off, out);
        }
        break;
    case A_MODE:
        m->mode = e->arg;
        CONTROL(out, "mode", e->arg);
        break;
    case A_CURSOR:
    case A_REVERSE:
    case A_USER_CHARS:
        if (p[0] > 1)
            error(m, TW_ERR_BAD_PARAMETER, off, out);
        else if (e->action == A_CURSOR)
            CONTROL(out, "cursor", p[0]);
        else if (e->action == A_REVERSE)
            CONTROL(out, "reverse", p[0]);
        else
            CONTROL(out, "user_chars", p[0]);
        break;
    case A_BRIGHTNESS:
        if (p[0] >= 1 && p[0] <= 4)
            CONTROL(out, "brightness", p[0]);
        else
            error(m, TW_ERR_BAD_PARAMETER, off, out);
        break;
    case A_BLINK: CONTROL(out, "blink", p[0]); break;
    case A_CODEPAGE:
        if (m->codepage_index[p[0]] < 0)
            error(m, TW_ERR_UNKNOWN_CODE_TABLE, off, out);
        else
            m->codepage = m->codepages + (size_t)m->codepage_index[p[0]] * 128;
        break;
    case A_CHARSET:
        if (m->charset_index[p[0]] < 0)
            error(m, TW_ERR_UNKNOWN_CHARSET, off, out);
        else
            m->charset = m->charsets + (size_t)m->charset_index[p[0]] * 128;
        break;
    case A_DEFINE:
        if (p[0] == 1 && p[1] >= 0x20 && p[1] <= p[2]) {
            m->state = SKIP;
            m->skip = (unsigned)(p[2] - p[1] + 1) * 6u;
        } else {
            error(m, TW_ERR_BAD_PARAMETER, off, out);
        }
        break;
    case A_STRING:
        m->state = STRING;
        m->line = e->arg;
        m->tlen = 0;
        break;
    default: /* A_SELECT, A_CANCEL_USER, A_IGNORE */
        break;
    }
}

static void byte(tw_display_model *m, uint8_t b, uint64_t off, tw_out *out)
{
    for (;;) {
        switch (m->state) {
        case GROUND: {
            unsigned k;
            if (b >= 0x20) {
                put(m, b, out);
                return;
            }
            m->hdr[0] = b;
            m->hlen = 1;
            m->cmd_off = off;
            if (b == ESC || b == US) {
                m->state = COMMAND;
                m->entry = NULL;
                return;
            }
            k = m->lookup[0][b];
            if (!k) {
                error(m, TW_ERR_UNKNOWN_DISPLAY_COMMAND, off, out);
            } else {
                m->n_cmd = 1;
                execute(m, &COMMANDS[k - 1], out);
            }
            return;
        }
        case COMMAND:
            m->hdr[m->hlen++] = b;
            if (!m->entry) {
                unsigned k;
                if (m->hlen == 2) {
                    if (m->hdr[0] == ESC && ((b == 0x51 && m->has3[0]) || (b == 0x5B && m->has3[1])))
                        return; /* the dialect has ESC Q x / ESC [ x commands: wait for x */
                    k = m->lookup[m->hdr[0] == ESC ? 1 : 2][b];
                } else {
                    k = m->lookup[m->hdr[1] == 0x51 ? 3 : 4][b];
                }
                if (!k) {
                    m->state = GROUND;
                    error(m, TW_ERR_UNKNOWN_DISPLAY_COMMAND, m->cmd_off, out);
                    if (b < 0x20)
                        continue;
                    return;
                }
                m->entry = &COMMANDS[k - 1];
                m->n_cmd = m->hlen;
            }
            if (m->hlen == m->n_cmd + m->entry->params) {
                m->state = GROUND;
                execute(m, m->entry, out);
            }
            return;
        case STRING: {
            unsigned limit = m->line == 2 ? TW_MAX_DISPLAY_MARQUEE : m->w;
            if (b == CR) {
                string_done(m, out);
                return;
            }
            if (b < 0x20 || m->tlen == limit) {
                error(m, b < 0x20 ? TW_ERR_DISPLAY_STRING_INTERRUPTED : TW_ERR_DISPLAY_STRING_TOO_LONG, m->cmd_off,
                      out);
                string_done(m, out);
                continue;
            }
            m->text[m->tlen++] = map_byte(m, b);
            return;
        }
        default:
            if (!--m->skip)
                m->state = GROUND;
            return;
        }
    }
}

/* put() for a run of text bytes from data[i]; returns the index after the run */
static size_t put_run(tw_display_model *m, const uint8_t *data, size_t i, size_t len, tw_out *out)
{
    while (i < len && data[i] >= 0x20) {
        uint32_t x = m->x, last = m->w - 1;
        uint16_t *cells = m->cells + m->y * m->w;
        uint8_t *dirty = m->dirty + m->y * m->w;
        const uint16_t *charset = m->charset, *codepage = m->codepage;
        if (m->pending || x == last) {
            put(m, data[i++], out);
            continue;
        }
        /* within the cursor's row, before its last column: no wrap, no scroll */
        while (i < len && data[i] >= 0x20 && x < last) {
            uint8_t b = data[i++];
            uint16_t cp = b < 0x80 ? charset[b] : codepage[b - 0x80];
            if (cells[x] != cp) {
                if (dirty[x])
                    tw_display_model_settle(m, out);
                cells[x] = cp;
                dirty[x] = cp != BLANK;
            }
            x++;
        }
        m->x = x;
    }
    return i;
}

void tw_display_model_feed(tw_display_model *m, const uint8_t *data, size_t len, uint64_t base, tw_out *out)
{
    size_t i = 0;
    while (i < len && !out->oom) {
        if (m->state == GROUND) {
            /* the text fast path */
            i = put_run(m, data, i, len, out);
            if (i == len)
                break;
        } else if (m->state == STRING) {
            /* the ESC Q string fast path: characters up to the limit; CR, a control byte or one too many go to
             * byte() */
            unsigned limit = m->line == 2 ? TW_MAX_DISPLAY_MARQUEE : m->w;
            while (i < len && data[i] >= 0x20 && m->tlen < limit)
                m->text[m->tlen++] = map_byte(m, data[i++]);
            if (i == len)
                break;
        }
        byte(m, data[i], base + i, out);
        i++;
    }
}

void tw_display_model_close(tw_display_model *m, tw_out *out)
{
    if (m->state != GROUND) {
        error(m, TW_ERR_TRUNCATED, m->cmd_off, out);
        m->state = GROUND;
    }
    tw_display_model_settle(m, out);
}

/* ------------------------------------------------------------------------------------------ decoder */

tw_display *tw_display_new(const tw_display_config *cfg)
{
    tw_display *d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->m = tw_display_model_new(cfg);
    if (!d->m) {
        free(d);
        return NULL;
    }
    return d;
}

void tw_display_free(tw_display *d)
{
    if (!d)
        return;
    tw_display_model_free(d->m);
    free(d);
}

int tw_display_feed(tw_display *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len)
        d->fresh = 1;
    tw_display_model_feed(d->m, data, len, d->io.offset, out);
    return tw_stream_end(&d->io, len);
}

int tw_display_tick(tw_display *d, int64_t now_ns, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, (const uint8_t *)"", out);
    (void)now_ns;
    if (rc != TW_OK)
        return rc;
    if (!d->fresh)
        tw_display_model_settle(d->m, out);
    d->fresh = 0;
    return tw_stream_end(&d->io, 0);
}

int tw_display_close(tw_display *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    tw_display_model_close(d->m, out);
    return tw_stream_end(&d->io, 0);
}
