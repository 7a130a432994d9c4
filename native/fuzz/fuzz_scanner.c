/* libFuzzer entry for the barcode scanner decoder (docs/protocols/scanner.md).
 *
 *   make native/fuzz/fuzz_scanner && native/fuzz/fuzz_scanner native/fuzz/corpus/scanner
 *
 * Input: the first SETTINGS_BYTES bytes are the options (below); the rest is the stream, decoded twice, fed whole
 * and fed in chunks whose sizes come from a generator seeded with the input, and the two outputs must be
 * identical. The output must be a well-formed sequence of {"type": str, "data": map}, and every protocol.error's
 * raw must be empty (a label may be card data). Ticks are not fuzzed here (with suffix none a stream without
 * ticks is one label, ended by close()); the Python differential test covers them.
 *
 * Settings bytes: 0 suffix (mod 5: cr, crlf, lf, tab, none), 1 aim (mod 3: auto, on, off), 2 bit 7 HID-POS |
 * bits 0-1 prefix length (0..3, serial only), 3-5 the prefix bytes. Configurations the decoder refuses (checked
 * by hand below) must make tw_scanner_new() return NULL.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scanner.h"
#include "tw_bounds.h"
#include "tw_errors.h"
#include "tw_msgpack.h"
#include "fuzz_common.h"

#define SETTINGS_BYTES 6

static void *make(const void *cfg) { return tw_scanner_new(cfg); }
static int feed(void *d, const uint8_t *data, size_t len, tw_out *out) { return tw_scanner_feed(d, data, len, out); }
static int close_(void *d, tw_out *out) { return tw_scanner_close(d, out); }
static void destroy(void *d) { tw_scanner_free(d); }
static const fuzz_target target = {make, feed, close_, destroy};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tw_scanner_config cfg;
    if (size < SETTINGS_BYTES)
        return 0;
    memset(&cfg, 0, sizeof(cfg));
    cfg.suffix = data[0] % 5;
    cfg.aim = data[1] % 3;
    cfg.hid = data[2] >> 7;
    cfg.gap_ms = 50;
    cfg.prefix_len = data[2] & 3;
    memcpy(cfg.prefix, data + 3, 3);
    if (cfg.hid && cfg.prefix_len) { /* HID-POS takes no prefix: refused */
        if (tw_scanner_new(&cfg) != NULL)
            abort();
        return 0;
    }
    /* maps: a GS1 string holds at most one element per AI the table covers (fewer than 1024) */
    fuzz_whole_vs_chunked(&target, &cfg, data + SETTINGS_BYTES, size - SETTINGS_BYTES, seed_of(data, size), 1024,
                          0);
    return 0;
}
