/* ZVT link layer: docs/protocols/zvt-link.md is the contract.
 *
 * One decoder per byte stream, either direction. tw_zvt_link_new() allocates the whole state once, including the
 * buffer of the APDU being received (TW_MAX_ZVT_APDU bytes); nothing grows afterwards. feed() accepts any split of
 * the stream. A complete APDU (serial: once its CRC matched) is handed to the APDU decoder (zvt_apdu.h,
 * docs/protocols/zvt.md) and the used part of the buffer is then overwritten with zeros, as it is when a frame is
 * abandoned. Events are appended to the caller's tw_out as concatenated msgpack maps {"type", "data"}.
 */
#ifndef TW_ZVT_LINK_H
#define TW_ZVT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

#define TW_ZVT_SERIAL 0 /* DLE STX ... DLE ETX CRC-lo CRC-hi, with ACK / NAK between frames */
#define TW_ZVT_TCP 1    /* bare APDUs back to back */

/* CLASS INSTR FF len-lo len-hi */
#define TW_ZVT_MAX_HEADER 5

#ifndef TW_ZVT_LINK_TYPES_DEFINED
#define TW_ZVT_LINK_TYPES_DEFINED
typedef struct tw_zvt_link tw_zvt_link;
#endif

/* NULL when out of memory or when framing is neither TW_ZVT_SERIAL nor TW_ZVT_TCP. strict != 0: an APDU with any
 * fault is rejected (only its errors are emitted; docs/protocols/zvt.md section 1). */
tw_zvt_link *tw_zvt_link_new(int framing, int strict);
void tw_zvt_link_free(tw_zvt_link *d);

/* TW_OK, TW_ERR_NOMEM (sticky: the decoder is unusable afterwards) or TW_ERR_CLOSED. */
int tw_zvt_link_feed(tw_zvt_link *d, const uint8_t *data, size_t len, tw_out *out);
/* End of stream: reports a truncated APDU or frame, or a DLE left pending. Further use gives TW_ERR_CLOSED. */
int tw_zvt_link_close(tw_zvt_link *d, tw_out *out);

#endif
