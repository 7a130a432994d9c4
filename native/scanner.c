/* Barcode scanner decoder (docs/protocols/scanner.md). See scanner.h for the streaming model; the Python twin is
 * protocols/scanner/reference.py. */
#include "scanner.h"

#include <stdlib.h>
#include <string.h>

#include "tw_bounds.h"
#include "tw_card.h"
#include "tw_errors.h"
#include "tw_event.h"
#include "tw_msgpack.h"
#include "tw_msr.h"

#define GS 0x1D
#define CR 0x0D
#define HID_REPORT 64
#define HID_REPORT_ID 0x02
#define HID_DATA_MAX 56

/* ------------------------------------------------------------------------------------- tables (§4, §7) */

/* sorted by (code, modifier), '\0' (any other modifier) first: the order of tables.aim_list() */
static const tw_scanner_aim AIM[] = {
    {'A', 0, "Code 39", 108, 0},
    {'C', 0, "Code 128", 110, 0},
    {'C', '1', "GS1-128", 120, 1},
    {'E', 0, "EAN/UPC", 0, 0},
    {'E', '0', "EAN-13", 104, 0},
    {'E', '1', "EAN/UPC add-on 2", 0, 0},
    {'E', '2', "EAN/UPC add-on 5", 0, 0},
    {'E', '3', "EAN-13 with add-on", 104, 0},
    {'E', '4', "EAN-8", 103, 0},
    {'F', 0, "Codabar", 107, 0},
    {'G', 0, "Code 93", 109, 0},
    {'H', 0, "Code 11", 0, 0},
    {'I', 0, "ITF", 106, 0},
    {'J', 0, "DotCode", 0, 0},
    {'J', '1', "GS1 DotCode", 0, 1},
    {'L', 0, "PDF417", 201, 0},
    {'M', 0, "MSI", 0, 0},
    {'Q', 0, "QR Code", 204, 0},
    {'Q', '3', "GS1 QR Code", 209, 1},
    {'S', 0, "Code 2 of 5", 0, 0},
    {'U', 0, "MaxiCode", 202, 0},
    {'X', 0, "other", 0, 0},
    {'d', 0, "Data Matrix", 203, 0},
    {'d', '2', "GS1 DataMatrix", 208, 1},
    {'e', 0, "GS1 DataBar", 131, 1},
    {'z', 0, "Aztec", 0, 0},
};
#define N_AIM (sizeof(AIM) / sizeof(AIM[0]))

#define DEC6(p) {p "d", 6, 6, 'N', TW_SCAN_AI_DEC}
static const tw_scanner_ai AIS[] = {
    {"00", 18, 18, 'N', 0}, {"01", 14, 14, 'N', 0}, {"02", 14, 14, 'N', 0}, {"03", 14, 14, 'N', 0},
    {"10", 0, 20, 'X', 0},  {"11", 6, 6, 'N', 0},   {"12", 6, 6, 'N', 0},   {"13", 6, 6, 'N', 0},
    {"15", 6, 6, 'N', 0},   {"16", 6, 6, 'N', 0},   {"17", 6, 6, 'N', 0},   {"20", 2, 2, 'N', 0},
    {"21", 0, 20, 'X', 0},  {"22", 0, 20, 'X', 0},  {"240", 0, 30, 'X', 0}, {"241", 0, 30, 'X', 0},
    {"250", 0, 30, 'X', 0}, {"251", 0, 30, 'X', 0}, {"254", 0, 20, 'X', 0}, {"30", 0, 8, 'N', 0},
    DEC6("310"), DEC6("311"), DEC6("312"), DEC6("313"), DEC6("314"), DEC6("315"), DEC6("316"),
    DEC6("320"), DEC6("321"), DEC6("322"), DEC6("323"), DEC6("324"), DEC6("325"), DEC6("326"), DEC6("327"),
    DEC6("328"), DEC6("329"), DEC6("330"), DEC6("331"), DEC6("332"), DEC6("333"), DEC6("334"), DEC6("335"),
    DEC6("336"), DEC6("337"), DEC6("340"), DEC6("341"), DEC6("342"), DEC6("343"), DEC6("344"), DEC6("345"),
    DEC6("346"), DEC6("347"), DEC6("348"), DEC6("349"), DEC6("350"), DEC6("351"), DEC6("352"), DEC6("353"),
    DEC6("354"), DEC6("355"), DEC6("356"), DEC6("357"), DEC6("360"), DEC6("361"), DEC6("362"), DEC6("363"),
    DEC6("364"), DEC6("365"), DEC6("366"), DEC6("367"), DEC6("368"), DEC6("369"),
    {"37", 0, 8, 'N', 0},
    {"390n", 0, 15, 'N', TW_SCAN_AI_DEC}, {"391n", 0, 18, 'N', TW_SCAN_AI_CUR_DEC},
    {"392n", 0, 15, 'N', TW_SCAN_AI_DEC}, {"393n", 0, 18, 'N', TW_SCAN_AI_CUR_DEC},
    {"400", 0, 30, 'X', 0}, {"401", 0, 30, 'X', 0}, {"402", 17, 17, 'N', 0}, {"403", 0, 30, 'X', 0},
    {"410", 13, 13, 'N', 0}, {"411", 13, 13, 'N', 0}, {"412", 13, 13, 'N', 0}, {"413", 13, 13, 'N', 0},
    {"414", 13, 13, 'N', 0}, {"415", 13, 13, 'N', 0}, {"416", 13, 13, 'N', 0},
    {"420", 0, 20, 'X', 0}, {"422", 3, 3, 'N', 0}, {"8020", 0, 25, 'X', 0}, {"90", 0, 30, 'X', 0},
};
#undef DEC6
#define N_AIS (sizeof(AIS) / sizeof(AIS[0]))
#define BUCKET_MAX 12 /* entries sharing their first two digits (31x..36x: at most 10) */

const tw_scanner_aim *tw_scanner_aim_table(unsigned *n)
{
    *n = (unsigned)N_AIM;
    return AIM;
}

const tw_scanner_ai *tw_scanner_ai_table(unsigned *n)
{
    *n = (unsigned)N_AIS;
    return AIS;
}

/* the GS1 AI encodable character set 82 */
static const char CSET82[] = "!\"%&'()*+,-./0123456789:;<=>?ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";

/* --------------------------------------------------------------------------------------------- state */

struct element {
    uint16_t entry;
    uint8_t ai_len;
    uint8_t masked; /* the value was scrubbed on the way out */
    uint32_t at;    /* the AI's first digit in the data */
    uint32_t a, b;  /* the value */
};

/* GS1 keys whose last digit is a mod-10 check digit (GS1 General Specifications 7.9): only a key whose check
 * digit holds keeps its digits unmasked (docs/protocols/scanner.md section 4). */
static int ai_has_check_digit(const tw_scanner_ai *spec)
{
    /* 00-03, 402, 410-417, 8017, 8018 (protocols/scanner/tables.py CHECK_DIGIT_AIS; a test compares them) */
    const char *a = spec->ai;
    if (!a[2])
        return a[0] == '0' && a[1] >= '0' && a[1] <= '3';
    if (!a[3])
        return a[0] == '4' && ((a[1] == '0' && a[2] == '2') || (a[1] == '1' && a[2] >= '0' && a[2] <= '7'));
    return a[0] == '8' && a[1] == '0' && a[2] == '1' && (a[3] == '7' || a[3] == '8') && !a[4];
}

struct tw_scanner {
    tw_scanner_config cfg;
    tw_stream io;
    int term;        /* the suffix byte, -1 for none */
    int64_t gap_ns;
    uint8_t *buf;    /* the label being collected, TW_MAX_SCAN_LABEL bytes */
    size_t len;
    uint64_t start;  /* stream offset of the label's first byte */
    int dropping;    /* an overlong label is being skipped */
    int fresh;       /* suffix none: bytes fed since the last tick */
    int have_last;
    int64_t last_seen;
    /* HID-POS */
    uint8_t rec[HID_REPORT];
    unsigned rec_len;
    uint64_t rec_start;
    int active;      /* a label's reports are being collected (a continuation was announced) */
    /* label decoding */
    uint8_t *text;   /* the label as it leaves (scrubbed), TW_MAX_SCAN_LABEL bytes */
    uint8_t *vals;   /* GS1: the data with X values scrubbed, TW_MAX_SCAN_LABEL bytes */
    uint8_t cset82[256];
    int16_t bucket[100][BUCKET_MAX];
    uint8_t nbucket[100];
    uint16_t base[N_AIS]; /* the entry's first index among the AIs it covers (ten for "310n") */
    uint8_t seen[N_AIS * 10]; /* AIs met in the current element string */
    struct element els[N_AIS * 10];
};

static void emit_error(tw_scanner *d, int code, uint64_t offset)
{
    tw_emit_error(d->io.out, code, offset, NULL, 0);
}

/* ------------------------------------------------------------------------------------ label decoding */

static int all_digits(const uint8_t *s, size_t n)
{
    size_t i;
    if (!n)
        return 0;
    for (i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* GS1 mod-10 over s[0..n) of digits: the last digit is the check digit */
static int check_ok(const uint8_t *s, size_t n)
{
    unsigned total = 0, k;
    for (k = 0; k + 1 < n; k++)
        total += (unsigned)(s[n - 2 - k] - '0') * (k % 2 == 0 ? 3u : 1u);
    return (10 - total % 10) % 10 == (unsigned)(s[n - 1] - '0');
}

/* EAN-13 with a 2- or 5-digit add-on (]E3) is a book (978, 979: ISBN) or a periodical (977: ISSN); any other
 * 15- or 18-digit string is not trusted as one (it may be a card number) and leaves scrubbed. */
static int addon_prefix_ok(const uint8_t *s)
{
    return s[0] == '9' && s[1] == '7' && s[2] >= '7' && s[2] <= '9';
}

/* the 12-digit UPC-A of an 8-digit UPC-E into out; 0 when it has no expansion */
static int upce_expand(const uint8_t *e, size_t n, uint8_t *out)
{
    const uint8_t *x = e + 1;
    if (n != 8 || !all_digits(e, 8) || (e[0] != '0' && e[0] != '1'))
        return 0;
    out[0] = e[0];
    if (x[5] <= '2') {
        out[1] = x[0], out[2] = x[1], out[3] = x[5];
        memset(out + 4, '0', 4);
        memcpy(out + 8, x + 2, 3);
    } else if (x[5] == '3') {
        memcpy(out + 1, x, 3);
        memset(out + 4, '0', 5);
        memcpy(out + 9, x + 3, 2);
    } else if (x[5] == '4') {
        memcpy(out + 1, x, 4);
        memset(out + 5, '0', 5);
        out[10] = x[4];
    } else {
        memcpy(out + 1, x, 5);
        memset(out + 6, '0', 4);
        out[10] = x[5];
    }
    out[11] = e[7];
    return 1;
}

static int is_alpha(uint8_t c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z'); }
static int is_alnum(uint8_t c) { return is_alpha(c) || (c >= '0' && c <= '9'); }

/* latin-1 s[0..n) as a msgpack str (UTF-8) */
static void put_latin1(tw_out *o, const uint8_t *s, size_t n)
{
    size_t i, extra = 0;
    uint8_t *p;
    for (i = 0; i < n; i++)
        extra += s[i] >> 7;
    p = tw_out_room(o, 5 + n + extra);
    if (!p)
        return;
    p = tw_mpw_str_header(p, n + extra);
    if (!extra) {
        memcpy(p, s, n);
        p += n;
    } else {
        for (i = 0; i < n; i++) {
            uint8_t c = s[i];
            if (c < 0x80) {
                *p++ = c;
            } else {
                *p++ = (uint8_t)(0xC0 | (c >> 6));
                *p++ = (uint8_t)(0x80 | (c & 0x3F));
            }
        }
    }
    tw_out_commit(o, p);
}

#define LIT(o, s) tw_mp_str((o), (s), sizeof(s) - 1)

/* msr.swipe when the label has a magnetic stripe track's shape (§5); 1 when it had. The PAN rule and the event
 * writer are the MSR decoder's (tw_msr.h), so both build msr.swipe alike. */
static int track(tw_scanner *d, const uint8_t *s, size_t n)
{
    uint8_t number;
    size_t at = 0, pan_len;
    if (!n || (s[0] != '%' && s[0] != ';'))
        return 0;
    number = s[0] == '%' ? 1 : 2;
    pan_len = tw_msr_track_pan(s, n, number, &at);
    if (pan_len) {
        tw_msr_write_swipe(d->io.out, s + at, pan_len, &number, 1);
        return 1;
    }
    if (n >= 3 && s[n - 1] == '?') {
        tw_msr_write_swipe(d->io.out, NULL, 0, &number, 1);
        return 1;
    }
    return 0;
}

/* A track inside a label (a reader that sends a byte before the start sentinel, an identifier or prefix we do not
 * strip): a start sentinel whose track yields a PAN of a card's length (12 or more digits, so that "a;1=2" in a QR
 * code stays a label), or a track 1 "%B ... ^" (its name follows the ^) — §5. */
#define TW_SCAN_INSIDE_PAN_MIN 12
static int track_inside(tw_scanner *d, const uint8_t *s, size_t n)
{
    size_t i, at = 0, pan_len;
    uint8_t number;
    const uint8_t *pct, *semi;
    if (n < 2)
        return 0;
    pct = memchr(s + 1, '%', n - 1);
    semi = memchr(s + 1, ';', n - 1);
    if (!pct && !semi) /* the usual label: no sentinel at all */
        return 0;
    i = (size_t)((pct && (!semi || pct < semi) ? pct : semi) - s);
    for (; i < n; i++) {
        if (s[i] != '%' && s[i] != ';')
            continue;
        number = s[i] == '%' ? 1 : 2;
        pan_len = tw_msr_track_pan(s + i, n - i, number, &at);
        if (pan_len >= TW_SCAN_INSIDE_PAN_MIN) {
            tw_msr_write_swipe(d->io.out, s + i + at, pan_len, &number, 1);
            return 1;
        }
        if (number == 1 && i + 2 < n && s[i + 1] == 'B' && memchr(s + i + 2, '^', n - i - 2)) {
            tw_msr_write_swipe(d->io.out, NULL, 0, &number, 1);
            return 1;
        }
    }
    return 0;
}

static const tw_scanner_aim *aim_lookup(uint8_t code, uint8_t mod)
{
    size_t i;
    const tw_scanner_aim *any = NULL;
    for (i = 0; i < N_AIM; i++) {
        if ((uint8_t)AIM[i].code != code)
            continue;
        if ((uint8_t)AIM[i].mod == mod)
            return &AIM[i];
        if (!AIM[i].mod)
            any = &AIM[i];
    }
    return any;
}

/* the AI at data[i..n): its entry index and digit count, or -1 */
static int ai_lookup(const tw_scanner *d, const uint8_t *s, size_t i, size_t n, unsigned *ai_len)
{
    unsigned b, k;
    if (i + 2 > n || s[i] < '0' || s[i] > '9' || s[i + 1] < '0' || s[i + 1] > '9')
        return -1;
    b = (unsigned)(s[i] - '0') * 10 + (unsigned)(s[i + 1] - '0');
    for (k = 0; k < d->nbucket[b]; k++) {
        const tw_scanner_ai *e = &AIS[d->bucket[b][k]];
        size_t len = strlen(e->ai), j;
        int ok = 1;
        if (i + len > n)
            continue;
        for (j = 2; j < len; j++) {
            uint8_t c = s[i + j];
            char want = e->ai[j];
            if (want == 'n' ? (c < '0' || c > '9') : want == 'd' ? (c < '0' || c > '5') : c != (uint8_t)want) {
                ok = 0;
                break;
            }
        }
        if (ok) {
            *ai_len = (unsigned)len;
            return d->bucket[b][k];
        }
    }
    return -1;
}

static int wildcard(char c) { return c == 'n' || c == 'd'; }

/* the AI's index among every AI the table covers (entry e, its digits at ai): for "seen" */
static unsigned ai_slot(const tw_scanner *d, unsigned e, const uint8_t *ai)
{
    const char *t = AIS[e].ai; /* 2 to 4 digits: read t[3] only when t[2] is not the terminator */
    return d->base[e] + (t[2] && wildcard(t[3]) ? (unsigned)(ai[3] - '0') : 0u);
}

/* parses data[0..n) into d->els; the count, with *err the error code (TW_OK when the whole string decoded) */
static unsigned parse_gs1(tw_scanner *d, const uint8_t *s, size_t n, int *err)
{
    size_t i = 0;
    unsigned count = 0, ai_len = 0;
    *err = TW_OK;
    while (i < n) {
        int e;
        const tw_scanner_ai *spec;
        size_t j, end, m;
        if (s[i] == GS) {
            i++;
            continue;
        }
        e = ai_lookup(d, s, i, n, &ai_len);
        if (e < 0) {
            *err = TW_ERR_GS1_UNKNOWN_AI;
            return count;
        }
        spec = &AIS[e];
        j = i + ai_len;
        if (spec->fixed) {
            end = j + spec->fixed;
            if (end > n) {
                *err = TW_ERR_GS1_BAD_VALUE;
                return count;
            }
        } else {
            const uint8_t *g = memchr(s + j, GS, n - j);
            end = g ? (size_t)(g - s) : n;
            if (end == j || end - j > spec->max || (spec->kind == TW_SCAN_AI_CUR_DEC && end - j < 4)) {
                *err = TW_ERR_GS1_BAD_VALUE;
                return count;
            }
        }
        if (spec->charset == 'N') {
            if (!all_digits(s + j, end - j)) {
                *err = TW_ERR_GS1_BAD_VALUE;
                return count;
            }
        } else {
            for (m = j; m < end; m++)
                if (!d->cset82[s[m]]) {
                    *err = TW_ERR_GS1_BAD_VALUE;
                    return count;
                }
        }
        if (d->seen[ai_slot(d, (unsigned)e, s + i)]) {
            *err = TW_ERR_GS1_REPEATED_AI;
            return count;
        }
        d->els[count].entry = (uint16_t)e;
        d->els[count].ai_len = (uint8_t)ai_len;
        d->els[count].at = (uint32_t)i;
        d->els[count].a = (uint32_t)j;
        d->els[count].b = (uint32_t)end;
        count++;
        d->seen[ai_slot(d, (unsigned)e, s + i)] = 1;
        i = end;
    }
    return count;
}

static uint64_t digits_value(const uint8_t *s, size_t n)
{
    uint64_t v = 0;
    size_t i;
    for (i = 0; i < n; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

static void decode_label(tw_scanner *d, const uint8_t *raw, size_t n, uint64_t off)
{
    tw_out *o = d->io.out;
    const uint8_t *label = raw, *data, *aim = NULL;
    size_t len = n, dn;
    const char *name = "unknown";
    int upos = 0, gs1 = 0, validated = 0, has_exp = 0, gerr = TW_OK;
    unsigned count = 0, k, nkeys, nnum = 0;
    uint8_t upca[12];
    if (!n)
        return;
    if (d->cfg.prefix_len) {
        if (n >= d->cfg.prefix_len && memcmp(raw, d->cfg.prefix, d->cfg.prefix_len) == 0) {
            label += d->cfg.prefix_len;
            len -= d->cfg.prefix_len;
            if (!len)
                return;
        } else {
            emit_error(d, TW_ERR_MISSING_PREFIX, off);
        }
    }
    if (track(d, label, len) || track_inside(d, label, len))
        return;
    data = label;
    dn = len;
    if (d->cfg.aim != TW_SCAN_AIM_OFF && len >= 3 && label[0] == ']' && is_alpha(label[1]) && is_alnum(label[2])) {
        aim = label;
        data = label + 3;
        dn = len - 3;
        if (track(d, data, dn)) /* a card swiped through a reader that prefixes an AIM identifier */
            return;
    } else if (d->cfg.aim == TW_SCAN_AIM_ON) {
        emit_error(d, TW_ERR_MISSING_AIM_ID, off);
    }
    if (aim) {
        const tw_scanner_aim *e = aim_lookup(aim[1], aim[2]);
        if (e) {
            name = e->name;
            upos = e->upos;
            gs1 = e->gs1;
        }
        if (aim[1] == 'E' && aim[2] == '0') {
            if (all_digits(data, dn) && (dn == 8 || dn == 12 || dn == 13)) {
                if (dn == 8) {
                    name = "UPC-E";
                    upos = 102;
                    validated = upce_expand(data, dn, upca) && check_ok(upca, 12);
                    has_exp = validated;
                } else {
                    if (dn == 12 || data[0] == '0') {
                        name = "UPC-A";
                        upos = 101;
                    } else {
                        name = "EAN-13";
                        upos = 104;
                    }
                    validated = check_ok(data, dn);
                }
            }
            if (!validated)
                emit_error(d, TW_ERR_BAD_CHECK_DIGIT, off);
        } else if (aim[1] == 'E' && (aim[2] == '4' || aim[2] == '3')) {
            if (aim[2] == '4')
                validated = dn == 8 && all_digits(data, dn) && check_ok(data, 8);
            else
                validated = (dn == 15 || dn == 18) && all_digits(data, dn) && check_ok(data, 13);
            if (!validated)
                emit_error(d, TW_ERR_BAD_CHECK_DIGIT, off);
            else if (aim[2] == '3' && !addon_prefix_ok(data))
                validated = 0; /* a valid code, but not trusted as a product: it leaves scrubbed */
        } else if (aim[1] == 'I' && dn == 14 && all_digits(data, dn) && check_ok(data, 14)) {
            validated = 1; /* ITF-14: a GTIN-14 on a carton */
        }
    } else if ((dn == 8 || dn == 12 || dn == 13) && all_digits(data, dn) && check_ok(data, dn)) {
        validated = 1;
        name = dn == 8 ? "EAN-8" : dn == 12 ? "UPC-A" : "EAN-13";
        upos = dn == 8 ? 103 : dn == 12 ? 101 : 104;
    }
    if (dn && data[0] == GS)
        gs1 = 1;
    if (gs1) {
        count = parse_gs1(d, data, dn, &gerr);
        for (k = 0; k < count; k++)
            d->seen[ai_slot(d, d->els[k].entry, data + d->els[k].at)] = 0;
        /* a key with a wrong check digit is not a GS1 key (it may be a card number read as one) */
        for (k = 0; gerr == TW_OK && k < count; k++) {
            const struct element *el = &d->els[k];
            if (ai_has_check_digit(&AIS[el->entry]) && !check_ok(data + el->a, el->b - el->a))
                gerr = TW_ERR_BAD_CHECK_DIGIT;
        }
        if (gerr != TW_OK)
            emit_error(d, gerr, off);
        if (dn)
            memcpy(d->vals, data, dn);
        for (k = 0; k < count; k++) {
            struct element *el = &d->els[k];
            const tw_scanner_ai *spec = &AIS[el->entry];
            size_t vn = el->b - el->a;
            /* every value but a checked key is scrubbed; after a fault, every value */
            if (gerr != TW_OK || !ai_has_check_digit(spec))
                tw_card_scrub(d->vals + el->a, vn);
            el->masked = vn && memcmp(d->vals + el->a, data + el->a, vn) != 0;
            if (spec->kind != TW_SCAN_AI_PLAIN && !el->masked)
                nnum++;
        }
        validated = gerr == TW_OK;
    }
    if (validated && gs1) {
        if (dn)
            memcpy(d->text, d->vals, dn);
    } else if (dn) {
        memcpy(d->text, data, dn);
        if (!validated)
            tw_card_scrub(d->text, dn);
    }
    nkeys = 4 + (has_exp ? 1 : 0) + (gs1 ? 1 : 0) + (nnum ? 1 : 0);
    {
        uint8_t *p = tw_out_room(o, 64);
        if (!p)
            return;
        p = TW_HEAD(p, "scanner.data", nkeys);
        p = TW_KEY(p, "label");
        tw_out_commit(o, p);
    }
    put_latin1(o, d->text, dn);
    LIT(o, "symbology");
    tw_mp_str(o, name, strlen(name));
    LIT(o, "upos_type");
    tw_mp_uint(o, (uint64_t)upos);
    LIT(o, "aim");
    if (aim)
        put_latin1(o, aim, 3);
    else
        tw_mp_str(o, "", 0);
    if (has_exp) {
        LIT(o, "expanded");
        tw_mp_str(o, (const char *)upca, 12);
    }
    if (gs1) {
        LIT(o, "gs1");
        tw_mp_map(o, count);
        for (k = 0; k < count; k++) {
            const struct element *el = &d->els[k];
            tw_mp_str(o, (const char *)data + el->at, el->ai_len);
            tw_mp_str(o, (const char *)d->vals + el->a, el->b - el->a); /* the charset is ASCII */
        }
        if (nnum) {
            LIT(o, "gs1_numbers");
            tw_mp_map(o, nnum);
            for (k = 0; k < count; k++) {
                const struct element *el = &d->els[k];
                const tw_scanner_ai *spec = &AIS[el->entry];
                const uint8_t *v = data + el->a;
                size_t vn = el->b - el->a;
                int cur = spec->kind == TW_SCAN_AI_CUR_DEC;
                if (spec->kind == TW_SCAN_AI_PLAIN || el->masked)
                    continue;
                tw_mp_str(o, (const char *)data + el->at, el->ai_len);
                tw_mp_map(o, cur ? 3 : 2);
                LIT(o, "value");
                tw_mp_uint(o, cur ? digits_value(v + 3, vn - 3) : digits_value(v, vn));
                LIT(o, "decimals");
                tw_mp_uint(o, (uint64_t)(data[el->at + el->ai_len - 1] - '0'));
                if (cur) {
                    LIT(o, "currency");
                    tw_mp_str(o, (const char *)v, 3);
                }
            }
        }
    }
}

/* -------------------------------------------------------------------------------------- serial (§2, §3) */

static void end_label(tw_scanner *d)
{
    if (d->dropping) {
        d->dropping = 0;
    } else if (d->len) {
        size_t n = d->len;
        if (d->cfg.suffix == TW_SCAN_SUFFIX_CRLF && d->buf[n - 1] == CR)
            n--;
        decode_label(d, d->buf, n, d->start);
    }
    d->len = 0;
}

static void serial_walk(tw_scanner *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        const uint8_t *t = d->term >= 0 ? memchr(p, d->term, (size_t)(end - p)) : NULL;
        const uint8_t *stop = t ? t : end;
        size_t n = (size_t)(stop - p);
        if (n && !d->dropping) {
            size_t room = TW_MAX_SCAN_LABEL - d->len;
            if (!d->len)
                d->start = d->io.in_base + (uint64_t)(p - d->io.in_start);
            if (n > room) {
                emit_error(d, TW_ERR_LABEL_TOO_LONG, d->start);
                d->len = 0;
                d->dropping = 1;
            } else {
                memcpy(d->buf + d->len, p, n);
                d->len += n;
            }
        }
        if (!t)
            break;
        end_label(d);
        p = t + 1;
    }
}

/* ---------------------------------------------------------------------------------------- HID-POS (§7) */

static void hid_report(tw_scanner *d, const uint8_t *r, uint64_t off)
{
    unsigned n = r[1];
    if (r[0] != HID_REPORT_ID || n > HID_DATA_MAX) {
        emit_error(d, TW_ERR_BAD_REPORT, off);
        d->active = d->dropping = 0;
        d->len = 0;
        return;
    }
    if (!d->active) {
        d->active = 1;
        d->start = off;
        d->len = 0;
        if (r[2] == ']') {
            memcpy(d->buf, r + 2, 3);
            d->len = 3;
        }
    }
    if (!d->dropping) {
        if (d->len + n > TW_MAX_SCAN_LABEL) {
            emit_error(d, TW_ERR_LABEL_TOO_LONG, d->start);
            d->dropping = 1;
            d->len = 0;
        } else {
            memcpy(d->buf + d->len, r + 5, n);
            d->len += n;
        }
    }
    if (r[63] == 0) {
        if (!d->dropping)
            decode_label(d, d->buf, d->len, d->start);
        d->active = d->dropping = 0;
        d->len = 0;
    }
}

static void hid_walk(tw_scanner *d, const uint8_t *p, const uint8_t *end)
{
    while (p < end) {
        uint64_t off = d->io.in_base + (uint64_t)(p - d->io.in_start);
        if (!d->rec_len && end - p >= HID_REPORT) {
            hid_report(d, p, off);
            p += HID_REPORT;
            continue;
        }
        {
            size_t take = HID_REPORT - d->rec_len;
            if (take > (size_t)(end - p))
                take = (size_t)(end - p);
            if (!d->rec_len)
                d->rec_start = off;
            memcpy(d->rec + d->rec_len, p, take);
            d->rec_len += (unsigned)take;
            p += take;
            if (d->rec_len == HID_REPORT) {
                hid_report(d, d->rec, d->rec_start);
                d->rec_len = 0;
            }
        }
    }
}

/* ------------------------------------------------------------------------------------------------ API */

tw_scanner *tw_scanner_new(const tw_scanner_config *cfg)
{
    tw_scanner *d;
    size_t i;
    if (!cfg || cfg->suffix < TW_SCAN_SUFFIX_CR || cfg->suffix > TW_SCAN_SUFFIX_NONE || cfg->gap_ms < 1 ||
        cfg->gap_ms > 60000 || cfg->aim < TW_SCAN_AIM_AUTO || cfg->aim > TW_SCAN_AIM_OFF ||
        cfg->prefix_len > TW_MAX_SCAN_PREFIX || (cfg->hid && cfg->prefix_len))
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->buf = malloc(TW_MAX_SCAN_LABEL);
    d->text = malloc(TW_MAX_SCAN_LABEL);
    d->vals = malloc(TW_MAX_SCAN_LABEL);
    if (!d->buf || !d->text || !d->vals) {
        tw_scanner_free(d);
        return NULL;
    }
    d->cfg = *cfg;
    if (cfg->hid)
        d->cfg.suffix = TW_SCAN_SUFFIX_CR; /* unused */
    switch (cfg->suffix) {
    case TW_SCAN_SUFFIX_CR: d->term = CR; break;
    case TW_SCAN_SUFFIX_CRLF:
    case TW_SCAN_SUFFIX_LF: d->term = 0x0A; break;
    case TW_SCAN_SUFFIX_TAB: d->term = 0x09; break;
    default: d->term = -1; break;
    }
    d->gap_ns = (int64_t)cfg->gap_ms * 1000000;
    for (i = 0; CSET82[i]; i++)
        d->cset82[(uint8_t)CSET82[i]] = 1;
    for (i = 0; i < N_AIS; i++) {
        unsigned b;
        if (i) {
            const char *t = AIS[i - 1].ai;
            char last = t[2] ? t[3] : 0;
            d->base[i] = (uint16_t)(d->base[i - 1] + (last == 'n' ? 10 : last == 'd' ? 6 : 1));
        }
        b = (unsigned)(AIS[i].ai[0] - '0') * 10 + (unsigned)(AIS[i].ai[1] - '0');
        if (d->nbucket[b] == BUCKET_MAX) { /* the table outgrew its buckets: a build error, never input */
            tw_scanner_free(d);
            return NULL;
        }
        d->bucket[b][d->nbucket[b]++] = (int16_t)i;
    }
    return d;
}

void tw_scanner_free(tw_scanner *d)
{
    if (!d)
        return;
    free(d->buf);
    free(d->text);
    free(d->vals);
    free(d);
}

int tw_scanner_feed(tw_scanner *d, const uint8_t *data, size_t len, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, data, out);
    if (rc != TW_OK)
        return rc;
    if (len) {
        if (d->cfg.hid) {
            hid_walk(d, data, data + len);
        } else {
            serial_walk(d, data, data + len);
            if (d->term < 0)
                d->fresh = 1;
        }
    }
    return tw_stream_end(&d->io, len);
}

int tw_scanner_tick(tw_scanner *d, int64_t now_ns, tw_out *out)
{
    int rc = tw_stream_begin_feed(&d->io, NULL, out);
    if (rc != TW_OK)
        return rc;
    if (!d->cfg.hid && d->term < 0) {
        if (d->fresh) {
            d->fresh = 0;
            d->have_last = 1;
            d->last_seen = now_ns;
        } else if ((d->len || d->dropping) && d->have_last) {
            /* now - last > gap without overflow: compare in unsigned arithmetic when now >= last */
            if (now_ns > d->last_seen && (uint64_t)now_ns - (uint64_t)d->last_seen > (uint64_t)d->gap_ns)
                end_label(d);
        }
    }
    return tw_stream_end(&d->io, 0);
}

int tw_scanner_label(tw_scanner *d, const uint8_t *label, size_t n, uint64_t offset, tw_out *out)
{
    tw_out *saved = d->io.out;
    if (n > TW_MAX_SCAN_LABEL)
        return TW_ERR_BAD_CONFIG;
    d->io.out = out;
    decode_label(d, label, n, offset);
    d->io.out = saved;
    return out->oom ? TW_ERR_NOMEM : TW_OK;
}

int tw_scanner_close(tw_scanner *d, tw_out *out)
{
    int rc = tw_stream_begin_close(&d->io, out);
    if (rc != TW_OK)
        return rc;
    if (d->cfg.hid) {
        if (d->active || d->rec_len)
            emit_error(d, TW_ERR_TRUNCATED, d->active ? d->start : d->rec_start);
        d->active = d->dropping = 0;
        d->rec_len = 0;
        d->len = 0;
    } else if (d->term < 0) {
        end_label(d);
    } else {
        if (d->len)
            emit_error(d, TW_ERR_TRUNCATED, d->start);
        d->len = 0;
        d->dropping = 0;
    }
    return tw_stream_end(&d->io, 0);
}
