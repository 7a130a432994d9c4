/* Card data rules shared by every payment decoder (docs/protocols/payment.md section 2).
 *
 * A PAN leaves a decoder only masked: the first six and the last four digits, every other character '*'
 * (PANs shorter than 13 characters keep only the last four). Free text from a payment device (print lines,
 * display texts, ECR fields, ISO 8583 text fields) is scrubbed before it is written: every "digit group
 * sequence" - digits, with single spaces or hyphens between groups - holding 13 or more digits is masked the
 * same way, separators kept. The Python twin is protocols/card.py; both must agree byte for byte.
 */
#ifndef TW_CARD_H
#define TW_CARD_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* Fewest digits a sequence must hold to be treated as a PAN by the text scrubber, and the digits kept. */
#define TW_PAN_MIN_DIGITS 13
#define TW_PAN_KEEP_FIRST 6
#define TW_PAN_KEEP_LAST 4

/* Writes the masked form of pan[0..n) (digits, or '*' for digits the device masked already) to dst[0..n). */
void tw_card_mask_pan(const uint8_t *pan, size_t n, uint8_t *dst);

/* Scrubs s[0..n) in place (see above). */
void tw_card_scrub(uint8_t *s, size_t n);

/* A customer display shows a number a few characters at a time (typed digit by digit, scrolled through a window),
 * so each snapshot must show less than a PAN's first six and last four together: on a display, every digit of a
 * digit group sequence holding TW_DISPLAY_MASK_DIGITS or more digits becomes '*'. */
#define TW_DISPLAY_MASK_DIGITS 5
void tw_card_scrub_display(uint8_t *s, size_t n);
void tw_mp_str_display_scrubbed(tw_out *o, const uint8_t *s, size_t n);

/* Checked msgpack writers of text that is scrubbed on the way out (the source is not modified). */
void tw_mp_str_scrubbed(tw_out *o, const uint8_t *s, size_t n);
void tw_mp_bin_scrubbed(tw_out *o, const uint8_t *s, size_t n);
/* A masked PAN as a msgpack str. */
void tw_mp_pan(tw_out *o, const uint8_t *pan, size_t n);

#endif
