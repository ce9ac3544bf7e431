//! Golden vectors: every frame captured from a real ZooKeeper 3.8 conversation
//! (`tests/vectors/*.txt` at the workspace root) is decoded with this crate, checked against
//! the capture's own annotation, re-encoded, and compared byte for byte with the capture.

use proto::*;
use serde_json::Value;
use std::path::PathBuf;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/vectors")
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn op_by_name(name: &str) -> Option<OpCode> {
    use OpCode::*;
    Some(match name {
        "create" => Create,
        "create2" => Create2,
        "createContainer" => CreateContainer,
        "createTTL" => CreateTtl,
        "delete" => Delete,
        "exists" => Exists,
        "getData" => GetData,
        "setData" => SetData,
        "getACL" => GetAcl,
        "setACL" => SetAcl,
        "getChildren" => GetChildren,
        "getChildren2" => GetChildren2,
        "sync" => Sync,
        "ping" => Ping,
        "check" => Check,
        "multi" => Multi,
        "multiRead" => MultiRead,
        "reconfig" => Reconfig,
        "checkWatches" => CheckWatches,
        "removeWatches" => RemoveWatches,
        "auth" => Auth,
        "setWatches" => SetWatches,
        "setWatches2" => SetWatches2,
        "sasl" => Sasl,
        "getEphemerals" => GetEphemerals,
        "getAllChildrenNumber" => GetAllChildrenNumber,
        "addWatch" => AddWatch,
        "whoAmI" => WhoAmI,
        "closeSession" => CloseSession,
        _ => return None,
    })
}

/// Checks one annotated frame; returns a description of the mismatch, if any.
fn check_frame(ann: &Value, frame: &[u8]) -> Result<(), String> {
    let payload = &frame[4..];
    assert_eq!(ann["len"].as_u64().unwrap() as usize, payload.len(), "length prefix");
    let reencoded = match ann["frame"].as_str().unwrap() {
        "ConnectRequest" => {
            let req = ConnectRequest::from_bytes(payload).map_err(|e| e.to_string())?;
            assert_eq!(req.timeout_ms as i64, ann["timeOut"].as_i64().unwrap());
            assert_eq!(req.session_id, ann["sessionId"].as_i64().unwrap());
            assert_eq!(req.read_only, ann.get("readOnly").and_then(Value::as_bool));
            encode_record_frame(&req)
        }
        "ConnectResponse" => {
            let resp = ConnectResponse::from_bytes(payload).map_err(|e| e.to_string())?;
            assert_eq!(resp.session_id, ann["sessionId"].as_i64().unwrap());
            encode_record_frame(&resp)
        }
        "Request" => {
            let mut r = Reader::new(payload);
            let header = RequestHeader::decode(&mut r).unwrap();
            assert_eq!(header.xid as i64, ann["xid"].as_i64().unwrap());
            let body = r.rest();
            match Request::decode(header.opcode, body) {
                Ok(req) => {
                    if let (Some(p), Some(want)) = (req.path(), ann.get("path").and_then(Value::as_str)) {
                        assert_eq!(p, want);
                    }
                    encode_request_frame(header.xid, &req)
                }
                Err(DecodeRequestError::UnknownOpCode(_)) if ann["op"] == "unknown" => return Ok(()),
                Err(e) => return Err(format!("decode failed: {e}")),
            }
        }
        "Reply" => {
            let mut r = Reader::new(payload);
            let header = ReplyHeader::decode(&mut r).unwrap();
            assert_eq!(header.err as i64, ann["err"].as_i64().unwrap());
            let body = r.rest();
            if header.xid == -1 {
                let ev = WatcherEvent::from_bytes(body).map_err(|e| e.to_string())?;
                assert_eq!(ev.path, ann["path"].as_str().unwrap());
                encode_notification_frame(ev.event_type, &ev.path)
            } else if body.is_empty() {
                encode_reply_frame(&header, None)
            } else {
                let op = op_by_name(ann["op"].as_str().unwrap()).ok_or("reply to unknown op")?;
                let resp = Response::decode(op, body).map_err(|e| e.to_string())?;
                encode_reply_frame(&header, Some(&resp))
            }
        }
        other => return Err(format!("unknown frame kind {other}")),
    };
    if reencoded == frame {
        Ok(())
    } else {
        Err("re-encoded bytes differ".into())
    }
}

#[test]
fn every_captured_frame_round_trips() {
    let mut files: Vec<_> = std::fs::read_dir(vectors_dir()).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    files.sort();
    assert_eq!(files.len(), 17, "all 17 capture files are present");
    let (mut checked, mut failures) = (0, Vec::new());
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut annotation: Option<Value> = None;
        for line in text.lines() {
            if line.starts_with("# c") {
                annotation = line.split_once(" | ").and_then(|(_, j)| serde_json::from_str(j).ok());
            } else if let Some(h) = line.strip_prefix("C> ").or_else(|| line.strip_prefix("S< ")) {
                // Four-letter words and partial trailing bytes carry no frame annotation.
                let Some(ann) = annotation.take().filter(|a| a.get("frame").is_some()) else {
                    continue;
                };
                checked += 1;
                if let Err(e) = check_frame(&ann, &hex(h)) {
                    failures.push(format!("{}: {e}: {line}", file.file_name().unwrap().to_string_lossy()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} frames failed:\n{}", failures.len(), failures.join("\n"));
    assert!(checked >= 470, "only {checked} frames checked");
}
