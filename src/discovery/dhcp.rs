//! The DHCP option that names the XMPP server (spec 3.3.1, Listings 1-3):
//! code 224 (site-specific) or 84 (proposed), data the server's host name
//! (`pronto.local`), and the configuration lines that make dnsmasq, ISC
//! dhcpd and Kea send it.

use super::DiscoveryError;

/// The site-specific option code the spec uses (RFC 3942 range 224-254).
pub const SITE_SPECIFIC: u8 = 224;
/// The option code the spec proposes to register.
pub const PROPOSED: u8 = 84;

/// Checks a server name for the option: 1-255 bytes of host name characters
/// (RFC 1035: letters, digits, `-`, `.`).
fn check(server: &str) -> Result<(), DiscoveryError> {
    let ok = !server.is_empty()
        && server.len() <= 255
        && server
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(DiscoveryError::BadName {
            name: server.into(),
            reason: "a DHCP server name is 1-255 letters, digits, '-' and '.'",
        })
    }
}

/// The option as it travels in a DHCP message: code, length, name
/// (Listing 2: `224 12 pronto.local`).
pub fn option_bytes(code: u8, server: &str) -> Result<Vec<u8>, DiscoveryError> {
    check(server)?;
    let mut out = vec![code, server.len() as u8];
    out.extend_from_slice(server.as_bytes());
    Ok(out)
}

/// dnsmasq configuration (`/etc/dnsmasq.conf` or a file in
/// `/etc/dnsmasq.d/`): one `dhcp-option` line per code.
pub fn dnsmasq(codes: &[u8], server: &str) -> Result<String, DiscoveryError> {
    check(server)?;
    let mut s = String::from("# dnsmasq: the XMPP server for things (XEP-0347 3.3.1)\n");
    for code in codes {
        s.push_str(&format!("dhcp-option={code},\"{server}\"\n"));
    }
    Ok(s)
}

/// ISC dhcpd configuration (`/etc/dhcp/dhcpd.conf`): the option declared as
/// text at global scope, then given a value.
pub fn isc_dhcpd(codes: &[u8], server: &str) -> Result<String, DiscoveryError> {
    check(server)?;
    let mut s = String::from("# ISC dhcpd: the XMPP server for things (XEP-0347 3.3.1)\n");
    for code in codes {
        s.push_str(&format!(
            "option xmpp-server-{code} code {code} = text;\noption xmpp-server-{code} \"{server}\";\n"
        ));
    }
    Ok(s)
}

/// Kea DHCPv4 configuration: the `option-def` and `option-data` entries to
/// merge into the `Dhcp4` object of `kea-dhcp4.conf`.
pub fn kea(codes: &[u8], server: &str) -> Result<String, DiscoveryError> {
    check(server)?;
    let defs: Vec<String> = codes
        .iter()
        .map(|c| {
            format!(
                "      {{ \"name\": \"xmpp-server-{c}\", \"code\": {c}, \"space\": \"dhcp4\", \"type\": \"string\" }}"
            )
        })
        .collect();
    let data: Vec<String> = codes
        .iter()
        .map(|c| {
            format!(
                "      {{ \"name\": \"xmpp-server-{c}\", \"code\": {c}, \"space\": \"dhcp4\", \"data\": \"{server}\" }}"
            )
        })
        .collect();
    Ok(format!(
        "// Kea (kea-dhcp4.conf): the XMPP server for things (XEP-0347 3.3.1)\n{{\n  \"Dhcp4\": {{\n    \"option-def\": [\n{}\n    ],\n    \"option-data\": [\n{}\n    ]\n  }}\n}}\n",
        defs.join(",\n"),
        data.join(",\n")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_2() {
        let bytes = option_bytes(SITE_SPECIFIC, "pronto.local").unwrap();
        assert_eq!(bytes[..2], [224, 12]);
        assert_eq!(&bytes[2..], b"pronto.local");
        assert_eq!(option_bytes(PROPOSED, "pronto.local").unwrap()[0], 84);
        assert!(option_bytes(224, "").is_err());
        assert!(option_bytes(224, "bad name").is_err());
        assert!(option_bytes(224, &"a".repeat(256)).is_err());
    }

    #[test]
    fn server_configurations() {
        assert_eq!(
            dnsmasq(&[224, 84], "pronto.local").unwrap(),
            "# dnsmasq: the XMPP server for things (XEP-0347 3.3.1)\n\
             dhcp-option=224,\"pronto.local\"\ndhcp-option=84,\"pronto.local\"\n"
        );
        let isc = isc_dhcpd(&[224], "pronto.local").unwrap();
        assert!(isc.contains("option xmpp-server-224 code 224 = text;\n"));
        assert!(isc.contains("option xmpp-server-224 \"pronto.local\";\n"));
        let kea_conf = kea(&[224, 84], "pronto.local").unwrap();
        let json: String = kea_conf.lines().filter(|l| !l.starts_with("//")).collect();
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["Dhcp4"]["option-def"][1]["code"], 84);
        assert_eq!(v["Dhcp4"]["option-data"][0]["data"], "pronto.local");
        assert!(kea(&[224], "x\"y").is_err());
    }
}
