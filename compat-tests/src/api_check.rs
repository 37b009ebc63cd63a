//! Comparing what the `SP_*` functions returned with a recording's
//! `api_log` entries (shared by the library replays and the end-to-end
//! scenario runs).

use serde_json::Value;

use crate::hex;
use crate::sp_api::{Received, Sp};
use crate::transcript::{body_from_spec, i, parse_hex_i32, s};

/// Compares an `SP_receive` result with an `api_log` entry. With
/// `vary_gid_time`, bytes 4..8 of a membership/transitional body (the ring
/// time) are not compared.
pub fn check_receive(ctx: &str, e: &Value, r: &Received, vary_gid_time: bool, errors: &mut Vec<String>) {
    let mut bad = |what: &str, exp: String, got: String| {
        if exp != got {
            errors.push(format!("{ctx}: {what}: expected {exp}, got {got}"));
        }
    };
    bad("return value", format!("{:?}", i(e, "ret")), format!("{:?}", Some(r.ret as i64)));
    if let Some(st) = s(e, "service_type").and_then(parse_hex_i32) {
        bad("service_type", format!("{st:#x}"), format!("{:#x}", r.service_type));
    }
    if let Some(x) = s(e, "sender") {
        bad("sender", x.to_string(), r.sender.clone());
    }
    if let Some(x) = i(e, "num_groups") {
        bad("num_groups", x.to_string(), r.num_groups.to_string());
    }
    if let Some(g) = e.get("groups").and_then(Value::as_array) {
        let exp: Vec<String> = g.iter().filter_map(Value::as_str).map(String::from).collect();
        bad("groups", format!("{exp:?}"), format!("{:?}", r.groups));
    }
    if let Some(x) = i(e, "mess_type") {
        bad("mess_type", x.to_string(), r.mess_type.to_string());
    }
    if let Some(x) = i(e, "endian_mismatch") {
        bad("endian_mismatch", x.to_string(), r.endian_mismatch.to_string());
    }
    if let Some(b) = s(e, "body_hex") {
        let mut body = r.body.clone();
        let mut want = hex::decode(b).unwrap_or_default();
        if vary_gid_time && r.service_type & 0x3000 != 0 && body.len() >= 8 && want.len() >= 8 {
            body[4..8].fill(0);
            want[4..8].fill(0);
        }
        bad("body", hex::encode(&want), hex::encode(&body));
    } else if e.get("body_is_pattern_i_mod_251").and_then(Value::as_bool) == Some(true) {
        let n = i(e, "len").unwrap_or(0) as usize;
        let want = body_from_spec(&format!("pattern:{n}")).unwrap();
        if r.body != want {
            errors.push(format!("{ctx}: body is not the {n}-byte i mod 251 pattern: {}", hex::diff(&want, &r.body)));
        }
    }
}

/// Compares `SP_get_memb_info` / `SP_get_vs_sets_info` /
/// `SP_get_vs_set_members` on a received membership with an `api_log`
/// entry. With `vary_gid_time`, the gid's time field is not compared.
pub fn check_membership(spx: &Sp, ctx: &str, e: &Value, r: &Received, vary_gid_time: bool, errors: &mut Vec<String>) {
    if let Some(m) = e.get("SP_get_memb_info") {
        let got = spx.memb_info(&r.buf, r.service_type);
        let mut bad = |what: &str, exp: String, gotv: String| {
            if exp != gotv {
                errors.push(format!("{ctx}: SP_get_memb_info {what}: expected {exp}, got {gotv}"));
            }
        };
        bad("ret", format!("{:?}", i(m, "ret")), format!("{:?}", Some(got.ret as i64)));
        if let Some(g) = m.get("gid").and_then(Value::as_array) {
            let exp: Vec<u32> = g.iter().filter_map(Value::as_u64).map(|x| x as u32).collect();
            let mut exp = exp;
            let mut ours: Vec<u32> = got.gid.iter().map(|&x| x as u32).collect();
            if vary_gid_time && exp.len() == 3 {
                exp[1] = 0;
                ours[1] = 0;
            }
            bad("gid", format!("{exp:?}"), format!("{ours:?}"));
        }
        if let Some(c) = s(m, "changed_member") {
            bad("changed_member", c.to_string(), got.changed_member.clone());
        }
        if let Some(n) = m.get("num_vs_sets").and_then(Value::as_u64) {
            bad("num_vs_sets", n.to_string(), got.num_vs_sets.to_string());
        }
        if let Some(v) = m.get("my_vs_set") {
            let exp = (v.get("num_members").and_then(Value::as_u64), v.get("members_offset").and_then(Value::as_u64));
            bad(
                "my_vs_set",
                format!("{exp:?}"),
                format!("{:?}", (Some(got.my_vs_set.0 as u64), Some(got.my_vs_set.1 as u64))),
            );
        }
    }
    if let Some(v) = e.get("SP_get_vs_sets_info") {
        let (ret, my, sets) = spx.vs_sets(&r.buf, 16);
        if i(v, "ret") != Some(ret as i64) {
            errors.push(format!("{ctx}: SP_get_vs_sets_info ret: expected {:?}, got {ret}", i(v, "ret")));
        }
        if let Some(x) = v.get("my_vs_set_index").and_then(Value::as_u64) {
            if x != my as u64 {
                errors.push(format!("{ctx}: SP_get_vs_sets_info my_vs_set_index: expected {x}, got {my}"));
            }
        }
        let exp_sets = v.get("sets").and_then(Value::as_array).cloned().unwrap_or_default();
        if exp_sets.len() != sets.len() {
            errors.push(format!("{ctx}: SP_get_vs_sets_info: expected {} sets, got {}", exp_sets.len(), sets.len()));
        }
        for (k, (es, gs)) in exp_sets.iter().zip(sets.iter()).enumerate() {
            let exp = (es.get("num_members").and_then(Value::as_u64), es.get("members_offset").and_then(Value::as_u64));
            let got = (Some(gs.num_members as u64), Some(gs.members_offset as u64));
            if exp != got {
                errors.push(format!("{ctx}: vs-set {k}: expected (num_members, members_offset) {exp:?}, got {got:?}"));
            }
            let (mret, names) = spx.vs_members(&r.buf, gs, 100);
            if let Some(x) = i(es, "SP_get_vs_set_members_ret") {
                if x != mret as i64 {
                    errors.push(format!("{ctx}: vs-set {k}: SP_get_vs_set_members ret expected {x}, got {mret}"));
                }
            }
            let exp_names: Vec<String> = es
                .get("members")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(String::from).collect())
                .unwrap_or_default();
            if exp_names != names {
                errors.push(format!("{ctx}: vs-set {k}: members expected {exp_names:?}, got {names:?}"));
            }
        }
    }
}
