/* Scale decoders (docs/protocols/scale.md). See scale.h for the streaming model; the Python twin is
 * protocols/scale/reference.py. */
#include "scale.h"

#include <stdlib.h>
#include <string.h>

#include "scanner.h"
#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"

#define STX 0x02
#define ETX 0x03
#define LF 0x0A
#define CR 0x0D

/* ------------------------------------------------------------------------------------------ tables (§3-§6) */

static const tw_scale_command COMMANDS[] = {
    {TW_SCALE_NCI, "W", "weight"},
    {TW_SCALE_NCI, "S", "status"},
    {TW_SCALE_NCI, "Z", "zero"},
    {TW_SCALE_NCI, "H", "high_resolution"},
    {TW_SCALE_NCI, "U", "units"},
    {TW_SCALE_NCI, "T", "tare"},
    {TW_SCALE_NCI, "M", "counts"},
    {TW_SCALE_TOLEDO, "W", "weight"},
    {TW_SCALE_TOLEDO, "S", "status"},
    {TW_SCALE_TOLEDO, "Z", "zero"},
    {TW_SCALE_TOLEDO, "T", "tare"},
    {TW_SCALE_TOLEDO, "C", "clear_tare"},
    {TW_SCALE_MAGELLAN, "S11", "weight"},
    {TW_SCALE_MAGELLAN, "S14", "monitor"},
    {TW_SCALE_MAGELLAN, "S334", "beep"},
};
#define N_COMMANDS (sizeof(COMMANDS) / sizeof(COMMANDS[0]))

/* unit spellings -> unit */
static const struct {
    const char *text;
    uint8_t len;
    const char *unit;
    uint8_t unit_len;
} UNITS[] = {
    {"kg", 2, "kg", 2}, {"KG", 2, "kg", 2}, {"Kg", 2, "kg", 2}, {"g", 1, "g", 1},   {"G", 1, "g", 1},
    {"lb", 2, "lb", 2}, {"LB", 2, "lb", 2}, {"Lb", 2, "lb", 2}, {"oz", 2, "oz", 2}, {"OZ", 2, "oz", 2},
    {"Oz", 2, "oz", 2},
};
#define N_UNITS (sizeof(UNITS) / sizeof(UNITS[0]))
/* indexes into UNITS of the units a protocol sets itself */
#define U_KG 0
#define U_G 3
#define U_LB 5

/* Magellan label type prefixes -> AIM identifier; longest prefixes first */
static const struct {
    const char *prefix;
    size_t len;
    const char *aim;
} LABELS[] = {
    {"S08FF", 5, "]E4"}, {"S08B1", 5, "]A0"}, {"S08A", 4, "]E0"},
    {"S08E", 4, "]E0"},  {"S08F", 4, "]E0"},  {"S08R", 4, "]e0"},
};
#define N_LABELS (sizeof(LABELS) / sizeof(LABELS[0]))

/* fault names, in event order */
#define F_RAM 1u
#define F_EEPROM 2u
#define F_ROM 4u
#define F_CAL 8u
#define F_INIT_ZERO 16u
#define F_ZERO_RANGE 32u
static const char *const FAULTS[] = {"ram", "eeprom", "rom", "calibration", "initial_zero", "zero_range"};
static const uint8_t FAULT_LEN[] = {3, 6, 3, 11, 12, 10};

/* UnifiedPOS Scale status (ScaleConst) */
#define UPOS_STABLE 11
#define UPOS_UNSTABLE 12
#define UPOS_ZERO 13
#define UPOS_OVER 14
#define UPOS_NOT_READY 15
#define UPOS_UNDER_ZERO 16

const tw_scale_command *tw_scale_command_table(unsigned *n)
{
    *n = (unsigned)N_COMMANDS;
    return COMMANDS;
}

/* ------------------------------------------------------------------------------------------------ state */

struct tw_scale {
    tw_scale_config cfg;
    tw_stream io;
    int opener;     /* byte that opens a frame, -1: any byte */
    int term;       /* byte that ends a frame, -1: every byte is a frame (Toledo to_device) */
    int skip;       /* byte ignored outside a frame, -1: none */
    int in_frame;
    int dropping;   /* an overlong frame is being skipped */
    int junk;       /* inside a run of stray bytes (one error per run) */
    size_t len;
    uint64_t start; /* stream offset of the frame's first byte */
    uint8_t buf[TW_MAX_SCALE_FRAME];
    tw_scanner *scanner; /* magellan from_device: the label decoder */
};

struct status {
    int motion, zero, under, over, net;
    unsigned faults;
};

static void emit_error(tw_scale *d, int code, uint64_t offset)
{
    tw_emit_error(d->io.out, code, offset, NULL, 0);
}

#define LIT(o, s) tw_mp_str((o), (s), sizeof(s) - 1)

/* the UNITS index of s[0..n), or -1 */
static int unit_of(const uint8_t *s, size_t n)
{
    size_t i;
    if (n < 1 || n > 2)
        return -1;
    for (i = 0; i < N_UNITS; i++)
        if (UNITS[i].len == n && UNITS[i].text[0] == (char)s[0] && (n == 1 || UNITS[i].text[1] == (char)s[1]))
            return (int)i;
    return -1;
}

static void emit_request(tw_scale *d, const uint8_t *c, size_t n)
{
    size_t i;
    for (i = 0; i < N_COMMANDS; i++) {
        const tw_scale_command *e = &COMMANDS[i];
        if (e->protocol == d->cfg.protocol && strlen(e->command) == n && memcmp(e->command, c, n) == 0) {
            tw_out *o = d->io.out;
            uint8_t *p = tw_out_room(o, 64);
            if (!p)
                return;
            p = TW_HEAD(p, "scale.request", 2);
            p = TW_KEY(p, "command");
            p = tw_mpw_str(p, c, n);
            p = TW_KEY(p, "name");
            tw_out_commit(o, p);
            tw_mp_str(o, e->name, strlen(e->name));
            return;
        }
    }
    emit_error(d, TW_ERR_SCALE_UNKNOWN_COMMAND, d->start);
}

static void emit_weight(tw_scale *d, int64_t milli, int unit, int stable, int net)
{
    tw_out *o = d->io.out;
    uint8_t *p = tw_out_room(o, 96);
    if (!p)
        return;
    p = TW_HEAD(p, "scale.weight", 4);
    p = TW_KEY(p, "value_milli");
    p = tw_mpw_int(p, milli);
    p = TW_KEY(p, "unit");
    p = tw_mpw_str(p, UNITS[unit].unit, UNITS[unit].unit_len);
    p = TW_KEY(p, "stable");
    p = tw_mpw_bool(p, stable);
    p = TW_KEY(p, "net");
    p = tw_mpw_bool(p, net);
    tw_out_commit(o, p);
}

static int upos_of(const struct status *s)
{
    if (s->faults)
        return UPOS_NOT_READY;
    if (s->over)
        return UPOS_OVER;
    if (s->under)
        return UPOS_UNDER_ZERO;
    if (s->motion)
        return UPOS_UNSTABLE;
    if (s->zero)
        return UPOS_ZERO;
    return UPOS_STABLE;
}

static void emit_status(tw_scale *d, const struct status *s, int unit)
{
    tw_out *o = d->io.out;
    unsigned k, nf = 0;
    uint8_t *p = tw_out_room(o, 256);
    if (!p)
        return;
    for (k = 0; k < 6; k++)
        nf += (s->faults >> k) & 1u;
    p = TW_HEAD(p, "scale.status", unit >= 0 ? 9 : 8);
    p = TW_KEY(p, "motion");
    p = tw_mpw_bool(p, s->motion);
    p = TW_KEY(p, "zero");
    p = tw_mpw_bool(p, s->zero);
    p = TW_KEY(p, "under");
    p = tw_mpw_bool(p, s->under);
    p = TW_KEY(p, "over");
    p = tw_mpw_bool(p, s->over);
    p = TW_KEY(p, "error");
    p = tw_mpw_bool(p, s->faults != 0);
    p = TW_KEY(p, "upos_status");
    p = tw_mpw_uint(p, (uint64_t)upos_of(s));
    p = TW_KEY(p, "net");
    p = tw_mpw_bool(p, s->net);
    p = TW_KEY(p, "faults");
    p = tw_mpw_array(p, nf);
    for (k = 0; k < 6; k++)
        if (s->faults & (1u << k))
            p = tw_mpw_str(p, FAULTS[k], FAULT_LEN[k]);
    if (unit >= 0) {
        p = TW_KEY(p, "unit");
        p = tw_mpw_str(p, UNITS[unit].unit, UNITS[unit].unit_len);
    }
    tw_out_commit(o, p);
}

/* ------------------------------------------------------------------------------------------ weights (§1) */

/* spaces, optional sign, spaces, digits with at most one point: 1 when s[0..n) starts with a number; *end is the
 * index after it, *milli its value x 1000. 0 when there is no number or it breaks the digit or decimal bounds. */
static int parse_number(const uint8_t *s, size_t n, size_t *end, int64_t *milli, int *had_point)
{
    size_t i = 0;
    int neg = 0, point = 0;
    unsigned digits = 0, decimals = 0;
    int64_t v = 0;
    while (i < n && s[i] == ' ')
        i++;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
        while (i < n && s[i] == ' ')
            i++;
    }
    for (; i < n; i++) {
        uint8_t c = s[i];
        if (c >= '0' && c <= '9') {
            if (++digits > TW_MAX_SCALE_DIGITS)
                return 0;
            v = v * 10 + (c - '0');
            if (point)
                decimals++;
        } else if (c == '.' && !point) {
            point = 1;
        } else {
            break;
        }
    }
    if (!digits || decimals > 3)
        return 0;
    while (decimals < 3) {
        v *= 10;
        decimals++;
    }
    *milli = neg ? -v : v;
    *end = i;
    *had_point = point;
    return 1;
}

/* the section 1 grammar: number, optional spaces, a unit from the table, nothing after */
static int parse_weight(const uint8_t *s, size_t n, int64_t *milli, int *unit)
{
    size_t i;
    int point;
    if (!parse_number(s, n, &i, milli, &point))
        return 0;
    while (i < n && s[i] == ' ')
        i++;
    *unit = unit_of(s + i, n - i);
    return *unit >= 0;
}

/* ---------------------------------------------------------------------------------------------- NCI (§3) */

static int nci_status(const uint8_t *f, size_t m, struct status *st)
{
    size_t i;
    uint8_t s1, s2, s3 = 0x30;
    if (m < 2 || m > TW_MAX_SCALE_STATUS)
        return 0;
    for (i = 0; i < m; i++) {
        uint8_t b = f[i] & 0x7F;
        if ((b & 0x30) != 0x30)
            return 0;
        if (i >= 1 && ((b & 0x40) != 0) != (i + 1 < m))
            return 0;
    }
    s1 = f[0] & 0x7F;
    s2 = f[1] & 0x7F;
    if (m >= 3)
        s3 = f[2] & 0x7F;
    memset(st, 0, sizeof(*st));
    st->motion = s1 & 1;
    st->zero = (s1 >> 1) & 1;
    st->under = s2 & 1;
    st->over = (s2 >> 1) & 1;
    st->net = (s3 >> 2) & 1;
    if (s1 & 4)
        st->faults |= F_RAM;
    if (s1 & 8)
        st->faults |= F_EEPROM;
    if (s2 & 4)
        st->faults |= F_ROM;
    if (s2 & 8)
        st->faults |= F_CAL;
    if (s3 & 8)
        st->faults |= F_INIT_ZERO;
    return 1;
}

static const uint8_t *find_crlf(const uint8_t *s, size_t n)
{
    size_t i;
    for (i = 0; i + 1 < n; i++)
        if (s[i] == CR && s[i + 1] == LF)
            return s + i;
    return NULL;
}

static void nci_reply(tw_scale *d, const uint8_t *c, size_t n)
{
    const uint8_t *f1 = c, *f2, *sep;
    size_t n1, n2;
    struct status st;
    if (!n || c[n - 1] != CR) {
        emit_error(d, TW_ERR_SCALE_BAD_REPLY, d->start);
        return;
    }
    n--;
    sep = find_crlf(c, n);
    if (!sep) {
        if (n == 1 && c[0] == '?') {
            uint8_t *p = tw_out_room(d->io.out, 32);
            if (p) {
                p = TW_HEAD(p, "link.nak", 0);
                tw_out_commit(d->io.out, p);
            }
        } else if (nci_status(c, n, &st)) {
            emit_status(d, &st, -1);
        } else {
            emit_error(d, TW_ERR_SCALE_BAD_STATUS, d->start);
        }
        return;
    }
    n1 = (size_t)(sep - c);
    f2 = sep + 2;
    n2 = n - n1 - 2;
    if (find_crlf(f2, n2)) {
        emit_error(d, TW_ERR_SCALE_BAD_REPLY, d->start);
        return;
    }
    if (!nci_status(f2, n2, &st)) {
        emit_error(d, TW_ERR_SCALE_BAD_STATUS, d->start);
        return;
    }
    {
        int64_t milli;
        int unit;
        size_t i = 0;
        while (i < n1 && f1[i] == ' ')
            i++;
        unit = unit_of(f1 + i, n1 - i);
        if (unit >= 0) {
            emit_status(d, &st, unit);
            return;
        }
        if (parse_weight(f1, n1, &milli, &unit))
            emit_weight(d, milli, unit, !st.motion, st.net);
        else
            emit_error(d, TW_ERR_SCALE_BAD_WEIGHT, d->start);
        emit_status(d, &st, -1);
    }
}

/* ------------------------------------------------------------------------------------------- Toledo (§4) */

/* the UNITS index of the configured unit */
static int cfg_unit(const tw_scale *d) { return d->cfg.unit == TW_SCALE_UNIT_KG ? U_KG : U_LB; }

static void toledo_reply(tw_scale *d, const uint8_t *c, size_t n)
{
    struct status st;
    if (n == 2 && c[0] == '?') {
        uint8_t s = c[1];
        memset(&st, 0, sizeof(st));
        st.motion = s & 1;
        st.over = (s >> 1) & 1;
        st.under = (s >> 2) & 1;
        st.zero = (s >> 4) & 1;
        st.net = (s >> 5) & 1;
        if (s & 8)
            st.faults = F_ZERO_RANGE;
        emit_status(d, &st, -1);
        return;
    }
    if (n && c[0] != '-' && c[0] != '+') {
        size_t i;
        int64_t milli;
        int point, net = 0;
        size_t k = 0;
        while (k < n && c[k] == ' ')
            k++;
        if (k < n && c[k] != '-' && c[k] != '+' && parse_number(c, n, &i, &milli, &point)) {
            if (i < n && c[i] == 'N') {
                net = 1;
                i++;
            }
            if (i == n) {
                emit_weight(d, milli, point ? cfg_unit(d) : U_G, 1, net);
                return;
            }
        }
    }
    emit_error(d, TW_ERR_SCALE_BAD_REPLY, d->start);
}

/* ---------------------------------------------------------------------------------------------- CAS (§5) */

static void cas_line(tw_scale *d, const uint8_t *c, size_t n)
{
    int64_t milli;
    int unit;
    int stable, over = 0;
    if (n < 6 || c[2] != ',' || c[5] != ',' || !((c[3] == 'G' && c[4] == 'S') || (c[3] == 'N' && c[4] == 'T'))) {
        emit_error(d, TW_ERR_SCALE_BAD_REPLY, d->start);
        return;
    }
    if (c[0] == 'S' && c[1] == 'T')
        stable = 1;
    else if (c[0] == 'U' && c[1] == 'S')
        stable = 0;
    else if (c[0] == 'O' && c[1] == 'L')
        stable = 0, over = 1;
    else {
        emit_error(d, TW_ERR_SCALE_BAD_REPLY, d->start);
        return;
    }
    if (over) {
        struct status st;
        memset(&st, 0, sizeof(st));
        st.over = 1;
        st.net = c[3] == 'N';
        emit_status(d, &st, -1);
        return;
    }
    if (parse_weight(c + 6, n - 6, &milli, &unit))
        emit_weight(d, milli, unit, stable, c[3] == 'N');
    else
        emit_error(d, TW_ERR_SCALE_BAD_WEIGHT, d->start);
}

/* ----------------------------------------------------------------------------------------- Magellan (§6) */

static int starts_n(const uint8_t *c, size_t n, const char *lit, size_t k) { return n >= k && memcmp(c, lit, k) == 0; }
#define starts(c, n, lit) starts_n((c), (n), (lit), sizeof(lit) - 1)

static void magellan_line(tw_scale *d, const uint8_t *c, size_t n)
{
    size_t i;
    if (starts(c, n, "S08")) {
        for (i = 0; i < N_LABELS; i++) {
            size_t k = LABELS[i].len;
            if (starts_n(c, n, LABELS[i].prefix, k)) {
                /* the AIM id replaces the prefix in place: the prefix is at least 4 bytes, the id 3 */
                uint8_t *lab = d->buf + k - 3;
                int rc;
                memcpy(lab, LABELS[i].aim, 3);
                rc = tw_scanner_label(d->scanner, lab, n - k + 3, d->start, d->io.out);
                (void)rc; /* an OOM shows in the tw_out's flag, which tw_stream_end reports */
                return;
            }
        }
        emit_error(d, TW_ERR_MAGELLAN_UNKNOWN_LABEL, d->start);
        return;
    }
    if (starts(c, n, "S144") && (n == 8 || n == 9)) {
        int64_t v = 0;
        for (i = 4; i < n; i++) {
            if (c[i] < '0' || c[i] > '9')
                break;
            v = v * 10 + (c[i] - '0');
        }
        if (i == n) {
            emit_weight(d, d->cfg.unit == TW_SCALE_UNIT_KG ? v : v * 10, cfg_unit(d), 1, 0);
            return;
        }
    }
    if (n == 4 && starts(c, n, "S14") && c[3] != '0' && c[3] != '4' && c[3] >= '1' && c[3] <= '5') {
        struct status st;
        memset(&st, 0, sizeof(st));
        st.motion = c[3] == '1';
        st.over = c[3] == '2';
        st.zero = c[3] == '3';
        st.under = c[3] == '5';
        emit_status(d, &st, -1);
        return;
    }
    emit_error(d, TW_ERR_SCALE_BAD_REPLY, d->start);
}

/* -------------------------------------------------------------------------------------------- framing (§2) */

static void end_frame(tw_scale *d)
{
    const uint8_t *c = d->buf;
    size_t n = d->len;
    d->in_frame = 0;
    d->len = 0;
    if (d->dropping) {
        d->dropping = 0;
        return;
    }
    if (d->cfg.protocol == TW_SCALE_CAS && n && c[n - 1] == CR)
        n--;
    if (d->cfg.protocol == TW_SCALE_NCI && d->cfg.from_device) {
        nci_reply(d, c, n);
        return;
    }
    if (d->cfg.protocol == TW_SCALE_TOLEDO) {
        toledo_reply(d, c, n);
        return;
    }
    if (!n)
        return;
    if (!d->cfg.from_device) {
        if (d->cfg.protocol == TW_SCALE_CAS)
            emit_error(d, TW_ERR_SCALE_UNKNOWN_COMMAND, d->start);
        else
            emit_request(d, c, n);
    } else if (d->cfg.protocol == TW_SCALE_CAS) {
        cas_line(d, c, n);
    } else {
        magellan_line(d, c, n);
    }
}

static void toledo_commands(tw_scale *d, const uint8_t *p, const uint8_t *end)
{
    for (; p < end; p++) {
        uint8_t c = *p;
        size_t i;
        int known = 0;
        if (c == CR || c == LF) {
            d->junk = 0;
            continue;
        }
        for (i = 0; i < N_COMMANDS; i++)
            if (COMMANDS[i].protocol == TW_SCALE_TOLEDO && (uint8_t)COMMANDS[i].command[0] == c)
                known = 1;
        d->start = d->io.in_base + (uint64_t)(p - d->io.in_start);
        if (known) {
            d->junk = 0;
            emit_request(d, p, 1);
        } else if (!d->junk) {
            d->junk = 1;
            emit_error(d, TW_ERR_SCALE_UNKNOWN_COMMAND, d->start);
        }
    }
}

static void walk(tw_scale *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        if (!d->in_frame) {
            uint64_t off = d->io.in_base + (uint64_t)(p - d->io.in_start);
            uint8_t c = *p++;
            if (d->opener >= 0) {
                if (c == d->opener) {
                    d->in_frame = 1;
                    d->junk = 0;
                    d->start = off;
                    d->len = 0;
                } else if (!d->junk) {
                    d->junk = 1;
                    emit_error(d, TW_ERR_UNEXPECTED_BYTE, off);
                }
                continue;
            }
            if (c == d->skip)
                continue;
            d->in_frame = 1;
            d->start = off;
            d->len = 0;
            if (c == d->term) {
                end_frame(d);
                continue;
            }
            d->buf[d->len++] = c;
            continue;
        }
        {
            const uint8_t *t = memchr(p, d->term, (size_t)(end - p));
            const uint8_t *stop = t ? t : end;
            size_t n = (size_t)(stop - p);
            if (!d->dropping) {
                if (n > TW_MAX_SCALE_FRAME - d->len) {
                    emit_error(d, TW_ERR_SCALE_FRAME_TOO_LONG, d->start);
                    d->dropping = 1;
                    d->len = 0;
                } else {
                    memcpy(d->buf + d->len, p, n);
                    d->len += n;
                }
            }
            if (!t)
                return;
            p = t + 1;
            end_frame(d);
        }
    }
}

/* ------------------------------------------------------------------------------------------------ API */

tw_scale *tw_scale_new(const tw_scale_config *cfg)
{
    tw_scale *d;
    if (!cfg || cfg->protocol < TW_SCALE_NCI || cfg->protocol > TW_SCALE_MAGELLAN || cfg->from_device < 0 ||
        cfg->from_device > 1 || cfg->unit < TW_SCALE_UNIT_LB || cfg->unit > TW_SCALE_UNIT_KG)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->cfg = *cfg;
    d->opener = -1;
    d->skip = -1;
    switch (cfg->protocol) {
    case TW_SCALE_NCI:
        if (cfg->from_device) {
            d->opener = LF;
            d->term = ETX;
        } else {
            d->term = CR;
            d->skip = LF;
        }
        break;
    case TW_SCALE_TOLEDO:
        if (cfg->from_device) {
            d->opener = STX;
            d->term = CR;
        } else {
            d->term = -1;
        }
        break;
    case TW_SCALE_CAS: d->term = LF; break;
    default:
        d->term = CR;
        d->skip = LF;
        break;
    }
    if (cfg->protocol == TW_SCALE_MAGELLAN && cfg->from_device) {
        tw_scanner_config sc;
        memset(&sc, 0, sizeof(sc));
        sc.suffix = TW_SCAN_SUFFIX_CR;
        sc.gap_ms = 50;
        sc.aim = TW_SCAN_AIM_AUTO;
        d->scanner = tw_scanner_new(&sc);
        if (!d->scanner) {
            free(d);
            return NULL;
        }
    }
    return d;
}

void tw_scale_free(tw_scale *d)
{
    if (!d)
        return;
    tw_scanner_free(d->scanner);
    free(d);
}

int tw_scale_feed(tw_scale *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len) {
        if (d->term < 0)
            toledo_commands(d, data, data + len);
        else
            walk(d, data, data + len);
    }
    return tw_stream_end(&d->io, len);
}

int tw_scale_close(tw_scale *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    if (d->in_frame)
        emit_error(d, TW_ERR_TRUNCATED, d->start);
    d->in_frame = d->dropping = d->junk = 0;
    d->len = 0;
    return tw_stream_end(&d->io, 0);
}
