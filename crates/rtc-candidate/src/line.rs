//! Writing a candidate line: the pieces are gathered in a buffer on the stack
//! and handed to the formatter in one piece (or a few, for very long lines),
//! with integers and IPv4 octets written without the formatting machinery.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::address::Address;

/// Bytes gathered for a [`fmt::Formatter`].
pub(crate) struct Line<'a, 'b> {
    f: &'a mut fmt::Formatter<'b>,
    buf: [u8; 256],
    len: usize,
}

impl<'a, 'b> Line<'a, 'b> {
    pub(crate) fn new(f: &'a mut fmt::Formatter<'b>) -> Self {
        Self { f, buf: [0; 256], len: 0 }
    }

    /// Appends `s`; text longer than the buffer goes straight through.
    #[inline]
    pub(crate) fn push(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(s.as_bytes());
            self.len = end;
            return Ok(());
        }
        self.flush()?;
        if s.len() > self.buf.len() {
            return self.f.write_str(s);
        }
        self.push(s)
    }

    /// Appends `n` in decimal, written straight into the buffer.
    #[inline]
    pub(crate) fn number(&mut self, n: u32) -> fmt::Result {
        let mut width = 1;
        let mut rest = n / 10;
        while rest > 0 {
            width += 1;
            rest /= 10;
        }
        if self.len + width > self.buf.len() {
            self.flush()?;
        }
        let Some(dst) = self.buf.get_mut(self.len..self.len + width) else { return Err(fmt::Error) };
        let mut v = n;
        for d in dst.iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += width;
        Ok(())
    }

    /// Appends an address; IPv4 is written octet by octet.
    pub(crate) fn address(&mut self, a: &Address) -> fmt::Result {
        match a {
            Address::Ip(IpAddr::V4(ip)) => self.ipv4(*ip),
            other => fmt::Write::write_fmt(self, format_args!("{other}")),
        }
    }

    fn ipv4(&mut self, ip: Ipv4Addr) -> fmt::Result {
        let [a, b, c, d] = ip.octets();
        self.number(a.into())?;
        for o in [b, c, d] {
            self.push(".")?;
            self.number(o.into())?;
        }
        Ok(())
    }

    /// Hands what is gathered to the formatter.
    pub(crate) fn flush(&mut self) -> fmt::Result {
        // Only whole `str`s were copied in, so this is UTF-8.
        let text = std::str::from_utf8(&self.buf[..self.len]).map_err(|_| fmt::Error)?;
        self.len = 0;
        self.f.write_str(text)
    }
}

impl fmt::Write for Line<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s)
    }
}

#[cfg(test)]
mod tests {
    use crate::{Candidate, Extension, OtherExtension, Ufrag};

    fn checked_ufrag(s: &str) -> Ufrag {
        Ufrag::new(s).unwrap()
    }

    /// Lines longer than the buffer, and single pieces longer than it, come
    /// out whole and in order.
    #[test]
    fn long_lines_and_long_pieces() {
        let mut want = String::from("candidate:1 1 udp 7 192.0.2.1 9 typ host");
        let mut c = Candidate::parse(&want).unwrap();
        for i in 0..100u32 {
            let value = "v".repeat(i as usize * 7 % 300 + 1);
            want.push_str(&format!(" x{i} {value}"));
            c.extensions.push(Extension::Other(OtherExtension::new(&format!("x{i}"), &value).unwrap()));
        }
        let long_ufrag = "u".repeat(700);
        want.push_str(&format!(" ufrag {long_ufrag} generation 4294967295 network-cost 0"));
        c.extensions.push(Extension::Ufrag(checked_ufrag(&long_ufrag)));
        c.extensions.push(Extension::Generation(u32::MAX));
        c.extensions.push(Extension::NetworkCost(0));
        assert_eq!(c.to_string(), want);
        assert_eq!(Candidate::parse(&want).unwrap(), c);
    }

    #[test]
    fn addresses_and_numbers() {
        for line in [
            "candidate:0 256 UDP 0 0.0.0.0 0 typ relay raddr 255.255.255.255 rport 65535",
            "candidate:4294967295 1 tcp 4294967295 2001:db8::1 65535 typ host tcptype passive",
            "candidate:a 1 udp 10 x.local 10 typ host raddr host.example.org rport 100",
        ] {
            assert_eq!(Candidate::parse(line).unwrap().to_string(), line);
        }
    }
}
