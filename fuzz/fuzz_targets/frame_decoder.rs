//! Feeds arbitrary bytes to the frame decoder and to every message decoder, as both the agent and
//! the manager do with what arrives from the network: any input must give frames or errors, never
//! a panic, and never a buffer beyond the frame limit.
#![no_main]

use gatewatch_proto::frame::{self, FrameDecoder};
use gatewatch_proto::{AgentMessage, EnrollRequest, EnrollResponse, ManagerMessage};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // As a stream, in uneven pieces.
    let mut decoder = FrameDecoder::new(MAX);
    let split = data.first().map(|b| *b as usize % 17 + 1).unwrap_or(1);
    for chunk in data.chunks(split) {
        if decoder.push(chunk).is_err() {
            break;
        }
        assert!(decoder.buffered() <= 2 * (MAX + frame::HEADER_LEN));
        while let Ok(Some(body)) = decoder.next_frame() {
            decode_all(&body);
        }
    }
    // As a single body.
    decode_all(data);
});

fn decode_all(body: &[u8]) {
    if let Ok(AgentMessage::Events { records, .. }) = frame::decode_body::<AgentMessage>(body) {
        for record in records {
            let _ = gatewatch_proto::event::decode_body(record);
        }
    }
    let _ = frame::decode_body::<ManagerMessage>(body);
    let _ = frame::decode_body::<EnrollRequest>(body);
    let _ = frame::decode_body::<EnrollResponse>(body);
}
