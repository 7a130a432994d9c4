/* libFuzzer entry for the customer display decoders (docs/protocols/display.md).
 *
 *   make native/fuzz/fuzz_display && native/fuzz/fuzz_display native/fuzz/corpus/display
 *
 * Input: the first SETTINGS_BYTES bytes are the options (below); the rest is the stream, decoded twice, fed whole
 * and fed in chunks whose sizes come from a generator seeded with the input, and the two outputs must be
 * identical. The output must be a well-formed sequence of {"type": str, "data": map}, and every protocol.error's
 * raw at most one byte (the command's first byte). Ticks are not fuzzed (the Python differential covers them).
 *
 * Settings bytes: 0 bit 0 dialect (0 Epson, 1 CD5220), 1 columns (1 + b % 40), 2 rows (1 + b % 4). The code
 * tables are small synthetic ones (one-, two- and three-byte UTF-8, holes), as in fuzz_escpos.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "display.h"
#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

#define SETTINGS_BYTES 3
#define N_CODEPAGES 3
#define N_CHARSETS 2

static int16_t codepage_index[256];
static uint16_t codepages[N_CODEPAGES * 128];
static int16_t charset_index[256];
static uint16_t charsets[N_CHARSETS * 128];

static void build_tables(void)
{
    static int built;
    unsigned i;
    if (built)
        return;
    for (i = 0; i < 256; i++)
        codepage_index[i] = charset_index[i] = -1;
    codepage_index[0] = 0;
    codepage_index[2] = 1;
    codepage_index[16] = 2;
    charset_index[0] = 0;
    charset_index[2] = 1;
    for (i = 0; i < 128; i++) {
        codepages[i] = (uint16_t)(0x80 + i);
        codepages[128 + i] = i % 5 == 0 ? 0xfffd : (uint16_t)(0x400 + i);
        codepages[256 + i] = (uint16_t)(0x3000 + i);
        charsets[i] = (uint16_t)i;
        charsets[128 + i] = (uint16_t)i;
    }
    charsets[128 + 0x5b] = 0xc4;
    charsets[128 + 0x40] = 0x20ac;
    built = 1;
}

static void *make(const void *cfg) { return tw_display_new(cfg); }
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_display_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_display_close(d, out); }
static void destroy(void *d) { tw_display_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_display_config cfg;
    if (size < SETTINGS_BYTES)
        return 0;
    build_tables();
    memset(&cfg, 0, sizeof(cfg));
    cfg.dialect = (data[0] & 1) ? TW_DISPLAY_CD5220 : TW_DISPLAY_EPSON;
    cfg.columns = 1u + data[1] % TW_MAX_DISPLAY_COLUMNS;
    cfg.rows = 1u + data[2] % TW_MAX_DISPLAY_ROWS;
    cfg.codepage_index = codepage_index;
    cfg.codepages = codepages;
    cfg.n_codepages = N_CODEPAGES;
    cfg.charset_index = charset_index;
    cfg.charsets = charsets;
    cfg.n_charsets = N_CHARSETS;
    fuzz_whole_vs_chunked(&target, &cfg, data + SETTINGS_BYTES, size - SETTINGS_BYTES, seed_of(data, size), 16, 1);
    return 0;
}
