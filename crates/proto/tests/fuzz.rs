//! Decoding never panics: random bodies for every opcode, and every truncation of every
//! captured request, come back as a value or an error.

use proptest::prelude::*;
use proto::*;

const OPCODES: &[i32] = &[
    -11, -10, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 100, 101, 102, 103,
    104, 105, 106, 107, 999,
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn random_request_bodies_never_panic(op in prop::sample::select(OPCODES), body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Request::decode(op, &body);
        if let Some(code) = OpCode::from_i32(op) {
            let _ = Response::decode(code, &body);
        }
        let _ = ConnectRequest::from_bytes(&body);
        let _ = ConnectResponse::from_bytes(&body);
        let _ = frame_length(&body, DEFAULT_MAX_FRAME);
    }

    #[test]
    fn decoding_what_was_encoded_gives_the_same_request(op in prop::sample::select(OPCODES), body in prop::collection::vec(any::<u8>(), 0..128)) {
        // Decoding normalizes (nulls, booleans, multi end markers); after one round the form is fixed.
        if let Ok(request) = Request::decode(op, &body) {
            let mut out = Vec::new();
            request.encode(&mut out);
            prop_assert_eq!(Request::decode(op, &out), Ok(request));
        }
    }
}

#[test]
fn every_truncation_of_captured_requests_is_an_error_not_a_panic() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors");
    let mut truncations = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        for hex in text
            .lines()
            .filter_map(|l| l.strip_prefix("C> "))
            .filter(|h| h.len() % 2 == 0 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            let bytes: Vec<u8> =
                (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
            if bytes.len() < 12 {
                continue;
            }
            let opcode = i32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
            let body = &bytes[12..];
            for cut in 0..body.len() {
                let _ = Request::decode(opcode, &body[..cut]);
                truncations += 1;
            }
        }
    }
    assert!(truncations > 1000, "only {truncations} truncations tried");
}
