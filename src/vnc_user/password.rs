//! VNC passwords: the rules edge-setup enforces and the file format TigerVNC
//! reads, byte for byte what `vncpasswd -f` writes.
//!
//! The file holds the first 8 bytes of the password, NUL-padded, DES-encrypted
//! with a fixed key (8 bytes), optionally followed by the view-only password
//! encoded the same way (8 more bytes).

use des::Des;
use des::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use zeroize::{Zeroize, Zeroizing};

/// `vncpasswd` asks for at least this many characters.
pub const MIN_LEN: usize = 6;
/// VNC authentication uses only this many.
pub const MAX_LEN: usize = 8;

/// The fixed key of VNC authentication. VNC feeds each key byte to DES with its
/// bits reversed, so the standard DES key is this one with every byte reversed.
const VNC_KEY: [u8; 8] = [0x17, 0x52, 0x6b, 0x06, 0x23, 0x4e, 0x58, 0x07];

/// Checks a password against the rules; the error says which rule and why.
///
/// Only printable ASCII is accepted: VNC compares bytes, and clients encode
/// other characters differently (Latin-1, UTF-8, keyboard layouts), so such a
/// password may never match what a viewer sends.
pub fn check(password: &str) -> Result<(), String> {
    // The message never shows the character: it is part of the secret.
    if let Some(c) = password.chars().find(|c| !(' '..='~').contains(c)) {
        let found = if c.is_control() {
            "a control character"
        } else {
            "a character outside ASCII"
        };
        return Err(format!(
            "a VNC password may only contain printable ASCII characters (letters, digits, punctuation, space), \
             this one has {found}: VNC compares bytes and viewers encode other characters differently"
        ));
    }
    let len = password.len();
    if len > MAX_LEN {
        return Err(format!(
            "a VNC password has at most {MAX_LEN} characters (this one has {len}): VNC uses only the first {MAX_LEN}, \
             so the rest would be ignored without a word; choose one of {MIN_LEN} to {MAX_LEN} characters"
        ));
    }
    if len < MIN_LEN {
        return Err(format!(
            "a VNC password needs at least {MIN_LEN} characters (this one has {len})"
        ));
    }
    Ok(())
}

/// The content of the password file: 8 bytes, or 16 with a view-only password.
pub fn encode(full: &str, view_only: Option<&str>) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(16));
    out.extend_from_slice(&*obfuscate(full.as_bytes()));
    if let Some(v) = view_only {
        out.extend_from_slice(&*obfuscate(v.as_bytes()));
    }
    out
}

/// The full-access password of a password file, for root to put in the
/// tenant's endpoint (`remote-access sync`): VNC's obfuscation is not
/// encryption, and the remote access service needs the password itself.
/// `None` for a file that is not 8 or 16 bytes or does not decode to a password
/// edge-setup would accept.
pub fn decode(file: &[u8]) -> Option<Zeroizing<String>> {
    if file.len() != 8 && file.len() != 16 {
        return None;
    }
    let key = VNC_KEY.map(u8::reverse_bits);
    let cipher = Des::new(&key.into());
    let mut block = Block::<Des>::default();
    block.copy_from_slice(&file[..8]);
    cipher.decrypt_block(&mut block);
    let len = block.iter().position(|b| *b == 0).unwrap_or(MAX_LEN);
    let text = std::str::from_utf8(&block[..len])
        .ok()
        .map(|s| Zeroizing::new(s.to_string()));
    block.as_mut_slice().zeroize();
    text.filter(|t| check(t).is_ok())
}

/// DES-ECB of the first 8 bytes of `password`, NUL-padded, under the VNC key.
fn obfuscate(password: &[u8]) -> Zeroizing<[u8; 8]> {
    let key = VNC_KEY.map(u8::reverse_bits);
    let cipher = Des::new(&key.into());
    let mut block = Block::<Des>::default();
    let n = password.len().min(MAX_LEN);
    block[..n].copy_from_slice(&password[..n]);
    cipher.encrypt_block(&mut block);
    let mut out = Zeroizing::new([0u8; 8]);
    out.copy_from_slice(&block);
    block.as_mut_slice().zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_known_vectors() {
        assert_eq!(hex(&encode("password", None)), "dbd83cfd727a1458");
        assert_eq!(hex(&encode("12345678", None)), "f0e43164f6c2e373");
        assert_eq!(hex(&encode("abc", None)), "9c0a172d3482e122");
        assert_eq!(hex(&encode("viewonly", None)), "3b33820a27ba4dd0");
        assert_eq!(
            hex(&encode("password", Some("viewonly"))),
            "dbd83cfd727a14583b33820a27ba4dd0"
        );
    }

    #[test]
    fn decode_gives_back_the_full_access_password() {
        for full in ["password", "secret", "a b~c!"] {
            assert_eq!(decode(&encode(full, None)).as_deref().map(String::as_str), Some(full));
            assert_eq!(
                decode(&encode(full, Some("viewonly"))).as_deref().map(String::as_str),
                Some(full)
            );
        }
        // not a password file, or a password edge-setup refuses (too short)
        assert!(decode(b"short").is_none());
        assert!(decode(&encode("abc", None)).is_none());
        assert!(decode(&[0xff; 8]).is_none());
    }

    #[test]
    fn the_des_key_is_the_bit_reversed_vnc_key() {
        assert_eq!(
            VNC_KEY.map(u8::reverse_bits),
            [0xe8, 0x4a, 0xd6, 0x60, 0xc4, 0x72, 0x1a, 0xe0]
        );
    }

    #[test]
    fn rules_are_explained() {
        assert!(check("secret12").is_ok());
        assert!(check("six ch").is_ok());
        let long = check("secret123").unwrap_err();
        assert!(
            long.contains("at most 8") && long.contains("uses only the first 8"),
            "{long}"
        );
        assert!(check("short").unwrap_err().contains("at least 6"));
        assert!(check("").unwrap_err().contains("at least 6"));
        let err = check("pässwort").unwrap_err();
        assert!(err.contains("printable ASCII") && !err.contains('ä'), "{err}");
        assert!(check("tab\there").unwrap_err().contains("control character"));
    }

    /// Random passwords against the real `tigervncpasswd -f`.
    #[test]
    fn random_passwords_match_tigervncpasswd() {
        use proptest::prelude::*;
        use std::io::Write;
        use std::process::{Command, Stdio};

        let tool = ["tigervncpasswd", "vncpasswd"]
            .into_iter()
            .find(|t| Command::new(t).arg("-f").stdin(Stdio::null()).output().is_ok());
        let Some(tool) = tool else {
            eprintln!(
                "skipped: tigervncpasswd is not installed; install it with scripts/install-deps (Debian package tigervnc-tools)"
            );
            return;
        };
        let run = |input: &str| {
            let mut child = Command::new(tool)
                .arg("-f")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
            child.wait_with_output().unwrap().stdout
        };
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(64));
        runner
            .run(&("[ -~]{6,8}", proptest::option::of("[ -~]{6,8}")), |(full, view)| {
                let input = match &view {
                    Some(v) => format!("{full}\n{v}\n"),
                    None => format!("{full}\n"),
                };
                prop_assert!(check(&full).is_ok());
                prop_assert_eq!(hex(&encode(&full, view.as_deref())), hex(&run(&input)));
                Ok(())
            })
            .unwrap();
    }
}
