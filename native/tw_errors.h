/* Every error code of the C core, from ONE list.
 *
 * TW_ERROR_LIST(X) expands X(enum name, stable string code, one-sentence reason) once per code. From it come
 * the enum, tw_error_name() and tw_error_reason(). The protocol codes (and their reasons, verbatim) are part of
 * the decoders' output: `protocol.error {code, reason, offset, raw}`, so never reword one; add new codes at the
 * end of their group. The first group are API statuses a function returns to its caller; they never appear
 * in output.
 */
#ifndef TW_ERRORS_H
#define TW_ERRORS_H

#define TW_ERROR_LIST(X)                                                                                       \
    /* API statuses */                                                                                         \
    X(TW_ERR_NOMEM, "nomem", "The decoder could not allocate memory.")                                          \
    X(TW_ERR_CLOSED, "closed", "The decoder was used after close().")                                          \
    X(TW_ERR_BAD_CONFIG, "bad_config", "The decoder was created with an invalid configuration.")                \
    /* ESC/POS (docs/protocols/escpos.md, section 10) */                                                       \
    X(TW_ERR_UNKNOWN_CONTROL, "unknown_control", "A control byte that has no meaning in ESC/POS.")              \
    X(TW_ERR_UNKNOWN_COMMAND, "unknown_command",                                                               \
      "A command prefix followed by a function that ESC/POS does not define.")                                 \
    X(TW_ERR_BAD_PARAMETER, "bad_parameter", "A known command with a parameter outside its documented values.") \
    X(TW_ERR_BAD_LENGTH, "bad_length", "A command whose length field disagrees with its contents.")             \
    X(TW_ERR_UNKNOWN_CODE_TABLE, "unknown_code_table",                                                         \
      "ESC t selected a code table this printer profile does not define.")                                     \
    X(TW_ERR_UNKNOWN_CHARSET, "unknown_charset",                                                               \
      "ESC R selected an international character set that is not defined.")                                   \
    X(TW_ERR_UNSUPPORTED_ENCODING, "unsupported_encoding",                                                     \
      "The printer was switched to a character encoding this decoder does not decode.")                        \
    X(TW_ERR_BARCODE_BAD_DATA, "barcode_bad_data", "A barcode data byte outside the symbology's character set.") \
    X(TW_ERR_BARCODE_TOO_LONG, "barcode_too_long", "Barcode data longer than 255 bytes without its terminating NUL.") \
    X(TW_ERR_CODE2D_TOO_LONG, "code2d_too_long", "2D-code data larger than the largest symbol can hold.")       \
    X(TW_ERR_CODE2D_EMPTY, "code2d_empty", "A 2D code was printed with no data stored.")                        \
    X(TW_ERR_IMAGE_TOO_LARGE, "image_too_large", "An image larger than the decoder's image limit.")             \
    X(TW_ERR_LINE_TOO_LONG, "line_too_long", "A line longer than the decoder's line limit; it was split.")      \
    X(TW_ERR_TRUNCATED, "truncated", "The stream ended inside a command.")                                     \
    X(TW_ERR_UNKNOWN_REPLY, "unknown_reply", "A byte from the printer that matches no reply pattern.")         \
    /* ZVT link (docs/protocols/zvt-link.md, section 5; "truncated" above is shared) */                        \
    X(TW_ERR_UNEXPECTED_BYTE, "unexpected_byte", "A byte outside any frame that is not a link control byte.")   \
    X(TW_ERR_BAD_ESCAPE, "bad_escape", "A DLE inside a frame followed by a byte that is not DLE, ETX or STX.")  \
    X(TW_ERR_FRAME_RESTARTED, "frame_restarted", "A new frame started before the previous one ended.")          \
    X(TW_ERR_FRAME_TOO_LONG, "frame_too_long", "A frame longer than the largest APDU.")                         \
    X(TW_ERR_SHORT_APDU, "short_apdu", "An APDU too short to hold its header.")                                 \
    X(TW_ERR_APDU_LENGTH_MISMATCH, "apdu_length_mismatch", "An APDU whose length field disagrees with its data.") \
    /* ZVT APDU layer (docs/protocols/zvt.md, section 7) */                                                    \
    X(TW_ERR_UNKNOWN_BMP, "unknown_bmp",                                                                       \
      "A BMP tag the BMP table does not define; the rest of the BMP stream was not decoded.")                  \
    X(TW_ERR_BMP_OVERRUN, "bmp_overrun", "A BMP whose length runs past the end of its APDU.")                   \
    X(TW_ERR_BAD_LLVAR, "bad_llvar", "A BMP length byte that is not F0 to F9.")                                 \
    X(TW_ERR_BAD_BCD, "bad_bcd", "A BCD field holding a nibble that is not a decimal digit.")                   \
    X(TW_ERR_BAD_FIELD_LENGTH, "bad_field_length",                                                             \
      "A field whose length is cut off, malformed, or does not fit its format.")                              \
    X(TW_ERR_BAD_TLV, "bad_tlv",                                                                               \
      "A TLV object whose tag or length is malformed or runs past the end of its container.")                 \
    X(TW_ERR_TLV_TOO_DEEP, "tlv_too_deep", "TLV objects nested deeper than the decoder's limit.")               \
    X(TW_ERR_MISSING_FIELD, "missing_field", "An APDU without a field its command requires.")                  \
    /* generic STX/ETX ECR link (docs/protocols/ecr.md, section 6; unexpected_byte, frame_restarted and truncated   \
     * above are shared) */                                                                                    \
    X(TW_ERR_FRAME_OVER_LIMIT, "frame_over_limit", "A frame longer than the decoder's configured frame limit.")   \
    X(TW_ERR_BAD_FIELD, "bad_field", "A message field that does not hold what its layout requires.")           \
    /* length framing and ISO 8583 (docs/protocols/iso8583.md, section 6; "truncated", "bad_field_length" and  \
     * "bad_tlv" above are shared) */        \
    X(TW_ERR_BAD_LENGTH_PREFIX, "bad_length_prefix", "A length prefix that is not a valid length in its framing.") \
    X(TW_ERR_LENGTH_TOO_LARGE, "length_too_large", "A length prefix above the decoder's frame limit.")           \
    X(TW_ERR_BAD_MTI, "bad_mti", "A message type indicator that is not four decimal digits.")                   \
    X(TW_ERR_BAD_BITMAP, "bad_bitmap", "A bitmap that is cut off or not valid in its encoding.")                \
    X(TW_ERR_UNKNOWN_FIELD, "unknown_field", "A bitmap bit set for a field the spec does not define.")          \
    X(TW_ERR_FIELD_TRUNCATED, "field_truncated", "A field whose data is shorter than its length.")              \
    X(TW_ERR_BAD_FIELD_DATA, "bad_field_data", "A field whose data is not valid in its encoding.")              \
    X(TW_ERR_EXTRA_DATA, "extra_data", "Bytes left after the last field of a message.")                        \
    /* barcode scanners (docs/protocols/scanner.md, section 8; "truncated" above is shared) */                  \
    X(TW_ERR_LABEL_TOO_LONG, "label_too_long", "A scanner label longer than the decoder's label limit; it was dropped.") \
    X(TW_ERR_MISSING_PREFIX, "missing_prefix", "A scanner label that does not start with the configured prefix.") \
    X(TW_ERR_MISSING_AIM_ID, "missing_aim_id",                                                                 \
      "A scanner label without the AIM symbology identifier the decoder requires.")                            \
    X(TW_ERR_BAD_CHECK_DIGIT, "bad_check_digit",                                                               \
      "A product code whose check digit or digits are not valid for its symbology.")                           \
    X(TW_ERR_GS1_UNKNOWN_AI, "gs1_unknown_ai",                                                                 \
      "A GS1 element string with an application identifier the decoder does not know.")                        \
    X(TW_ERR_GS1_BAD_VALUE, "gs1_bad_value",                                                                   \
      "A GS1 element string value that does not fit its application identifier's format.")                     \
    X(TW_ERR_GS1_REPEATED_AI, "gs1_repeated_ai", "A GS1 element string that holds the same application identifier twice.") \
    X(TW_ERR_BAD_REPORT, "bad_report", "A HID-POS input report with a report id or length the decoder does not accept.") \
    /* magnetic stripe readers (docs/protocols/msr.md, section 6; "unexpected_byte" above is shared) */            \
    X(TW_ERR_MSR_NO_END_SENTINEL, "msr_no_end_sentinel",                                                       \
      "A magnetic stripe track without its end sentinel; it was dropped.")                                     \
    X(TW_ERR_MSR_TRACK_TOO_LONG, "msr_track_too_long",                                                         \
      "A magnetic stripe track longer than its track can hold; it was dropped.")                               \
    X(TW_ERR_MSR_BAD_TRACK, "msr_bad_track",                                                                   \
      "A magnetic stripe track with characters outside its character set, or a read error.")                   \
    X(TW_ERR_MSR_BAD_LRC, "msr_bad_lrc", "A magnetic stripe track whose LRC character does not match its data.") \
    X(TW_ERR_MSR_PAN_MISMATCH, "msr_pan_mismatch", "The tracks of one card swipe hold different account numbers.") \
    /* scales (docs/protocols/scale.md, section 7; "truncated" and "unexpected_byte" above are shared) */       \
    X(TW_ERR_SCALE_FRAME_TOO_LONG, "scale_frame_too_long",                                                     \
      "A scale message longer than the decoder's frame limit; it was dropped.")                                \
    X(TW_ERR_SCALE_UNKNOWN_COMMAND, "scale_unknown_command",                                                   \
      "A till command that is not in the scale protocol's command table.")                                     \
    X(TW_ERR_SCALE_BAD_REPLY, "scale_bad_reply", "A scale message whose layout the decoder does not know.")     \
    X(TW_ERR_SCALE_BAD_WEIGHT, "scale_bad_weight",                                                             \
      "A scale weight that is not a number of at most nine digits and three decimals with a known unit.")      \
    X(TW_ERR_SCALE_BAD_STATUS, "scale_bad_status", "Scale status bytes whose fixed bits or continuation bits are wrong.") \
    X(TW_ERR_MAGELLAN_UNKNOWN_LABEL, "magellan_unknown_label",                                                 \
      "A Magellan label whose type prefix the decoder does not map to a symbology.")                           \
    /* customer displays (docs/protocols/display.md section 6) */                                            \
    X(TW_ERR_UNKNOWN_DISPLAY_COMMAND, "unknown_display_command",                                             \
      "A display control byte or command that the display's command table does not define.")                \
    X(TW_ERR_DISPLAY_STRING_TOO_LONG, "display_string_too_long",                                             \
      "A display string command (ESC Q) longer than its line; it was cut at the limit.")                     \
    X(TW_ERR_DISPLAY_STRING_INTERRUPTED, "display_string_interrupted",                                       \
      "A display string command (ESC Q) cut short by a control byte before its CR.")

enum tw_error {
    TW_OK = 0,
#define TW_X_ENUM(name, code, reason) name,
    TW_ERROR_LIST(TW_X_ENUM)
#undef TW_X_ENUM
    TW_ERR_COUNT
};

/* "ok" for TW_OK; NULL for a number that is no code. */
const char *tw_error_name(int code);
/* "" for TW_OK; NULL for a number that is no code. */
const char *tw_error_reason(int code);
/* Lengths of the two strings above (0 for an unknown code), so writers need no strlen. */
unsigned tw_error_name_len(int code);
unsigned tw_error_reason_len(int code);
/* Number of codes, TW_OK included: codes are 0 .. tw_error_count() - 1. */
int tw_error_count(void);

#endif
