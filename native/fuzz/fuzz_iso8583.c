/* libFuzzer entry for the ISO 8583 decoder (and the length framer under it).
 *
 *   make native/fuzz/fuzz_iso8583 && native/fuzz/fuzz_iso8583 native/fuzz/corpus/iso8583
 *
 * Input: byte 0 is a flag byte: bits 0-2 the framing (0..6 = len2, len4, ascii4, hex4, bcd2, vmlh, none; 7 = len2),
 * bits 3-4 the spec (0 iso87-binary, 1 iso87-ascii, 2 iso87-bcd, 3 an EBCDIC spec with binary prefixes), bit 5
 * strict, bit 6 a 5-byte link header. The rest is the stream. The built-in specs are rebuilt here from a compact
 * table (the same as protocols/iso8583/specs/; tests/test_iso8583_spec.py checks the JSON against pyiso8583). The
 * stream is decoded twice, fed whole and in chunks whose sizes come from a generator seeded with the input; the two
 * outputs must be identical, well-formed {"type", "data"} maps with at most 16 data keys, and every protocol.error
 * `raw` empty (a length framing has no resynchronisation point, so its errors quote nothing: payment.md section 2).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "iso8583.h"
#include "lenframe.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

/* pyiso8583 `default`: length type (0 fixed, 2 LL, 3 LLL) and max per field 2..128; binary fields below */
static const uint8_t kind87[129] = {
    0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 3,
    0, 0, 0, 0, 0, 0, 0, 2, 2, 3, 3, 3, 0, 0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 0};
static const uint16_t max87[129] = {
    0,   0,   19,  6,   12,  12,  12,  10,  8,   8,   8,   6,   6,   4,   4,   4,   4,   4,   4,   3,   3,   3,
    3,   3,   3,   2,   2,   1,   9,   9,   9,   9,   11,  11,  28,  37,  104, 12,  6,   2,   3,   8,   15,  40,
    25,  76,  999, 999, 999, 3,   3,   3,   8,   16,  240, 255, 999, 999, 999, 999, 999, 999, 999, 999, 8,   8,
    1,   2,   3,   3,   3,   4,   4,   6,   10,  10,  10,  10,  10,  10,  10,  10,  12,  12,  12,  12,  16,  16,
    16,  16,  42,  1,   2,   5,   7,   42,  8,   17,  25,  11,  11,  17,  28,  28,  100, 999, 999, 999, 999, 999,
    999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 999, 8};

static int is_binary87(unsigned n) { return n == 52 || n == 64 || n == 65 || n == 96 || n == 128; }

static tw_iso_field spec_binary[129], spec_ascii[129], spec_bcd[129], spec_ebcdic[129];
static const tw_iso_bin bins[] = {
    {4, 4, 1, "visa"},       {51, 55, 2, "mastercard"}, {2221, 2720, 4, "mastercard"}, {34, 34, 2, "amex"},
    {37, 37, 2, "amex"},     {6011, 6011, 4, "discover"}, {622126, 622925, 6, "discover"}, {62, 62, 2, "unionpay"},
};

static void set(tw_iso_field *f, unsigned kind, unsigned max, unsigned prefix, unsigned data, unsigned flags)
{
    f->kind = (uint8_t)kind;
    f->max = (uint16_t)max;
    f->prefix = (uint8_t)prefix;
    f->data = (uint8_t)data;
    f->flags = (uint8_t)(TW_ISO_DEFINED | flags);
    f->prefix_width = (uint8_t)(kind == 0 ? 0 : prefix <= TW_ISO_EBCDIC ? kind : kind <= 2 ? 1 : 2);
}

static void build_specs(void)
{
    unsigned n;
    static int built;
    if (built)
        return;
    built = 1;
    for (n = 2; n <= 128; n++) {
        unsigned bin = is_binary87(n);
        set(&spec_binary[n], kind87[n], max87[n], TW_ISO_ASCII, bin ? TW_ISO_BINARY : TW_ISO_ASCII, 0);
        set(&spec_ascii[n], kind87[n], bin ? 16 : max87[n], TW_ISO_ASCII, TW_ISO_ASCII, 0);
        /* a BCD flavour: numeric fixed fields as BCD digits, LL/LLL with BCD lengths */
        if (kind87[n] == 0 && !bin && n < 50)
            set(&spec_bcd[n], 0, max87[n], TW_ISO_ASCII, TW_ISO_BCD,
                TW_ISO_DIGITS | (n % 3 == 0 ? TW_ISO_PAD_RIGHT : 0));
        else
            set(&spec_bcd[n], kind87[n], max87[n], TW_ISO_BCD, bin ? TW_ISO_BINARY : TW_ISO_ASCII, 0);
        /* an EBCDIC flavour with binary and EBCDIC length prefixes */
        set(&spec_ebcdic[n], kind87[n], max87[n] > 255 && kind87[n] <= 2 ? 255 : max87[n],
            n % 2 ? TW_ISO_EBCDIC : TW_ISO_BINARY, bin ? TW_ISO_BINARY : TW_ISO_EBCDIC, 0);
    }
    set(&spec_binary[55], 3, 255, TW_ISO_ASCII, TW_ISO_BINARY, TW_ISO_TLV);
    set(&spec_ascii[55], 3, 510, TW_ISO_ASCII, TW_ISO_HEX, TW_ISO_TLV);
    set(&spec_bcd[2], 2, 19, TW_ISO_BCD, TW_ISO_BCD, TW_ISO_DIGITS);
    set(&spec_bcd[35], 2, 37, TW_ISO_BCD, TW_ISO_BCD, TW_ISO_DIGITS | TW_ISO_PAD_RIGHT);
    set(&spec_bcd[55], 3, 255, TW_ISO_BINARY, TW_ISO_BINARY, TW_ISO_TLV);
    set(&spec_ebcdic[55], 3, 999, TW_ISO_BINARY, TW_ISO_BINARY, TW_ISO_TLV);
    spec_ebcdic[100].flags = 0; /* an undefined field: unknown_field */
}

static void *make(const void *cfg) { return tw_iso8583_new(cfg); }
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_iso8583_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_iso8583_close(d, out); }
static void destroy(void *d) { tw_iso8583_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static tw_iso_field *const specs[4] = {spec_binary, spec_ascii, spec_bcd, spec_ebcdic};
    tw_iso_config cfg;
    unsigned flags, s;

    if (size < 1)
        return 0;
    build_specs();
    flags = data[0];
    s = (flags >> 3) & 3;
    memset(&cfg, 0, sizeof(cfg));
    cfg.framing = (flags & 7) == 7 ? TW_LF_LEN2 : (int)(flags & 7);
    cfg.fields = specs[s];
    cfg.mti = s == 2 ? TW_ISO_BCD : s == 3 ? TW_ISO_EBCDIC : TW_ISO_ASCII;
    cfg.bitmap_hex = s == 1;
    cfg.strict = (flags >> 5) & 1;
    cfg.header = (flags >> 6) & 1 ? 5 : 0;
    cfg.bins = bins;
    cfg.n_bins = sizeof(bins) / sizeof(bins[0]);
    if (tw_iso8583_check_config(&cfg) != TW_OK)
        abort();
    fuzz_whole_vs_chunked(&target, &cfg, data + 1, size - 1, seed_of(data, size), 16, 0);
    return 0;
}
