//! The parent ↔ child protocol over the child's stdin and stdout: little-endian fields and
//! length-prefixed byte strings, written by hand because the messages are few and small
//! (the module, the request, frames back). The table blocks do not cross here: they are in
//! the tables' memory file (`shared`).

use std::io::{self, Read, Write};

/// First bytes of every request, so that a child started by mistake fails fast.
pub const REQUEST_MAGIC: &[u8; 8] = b"MDSBREQ3";
/// The one byte the parent sends after the request once every block is in the tables' file.
pub const DATA_READY: u8 = 0xDA;

/// Frames the child sends back.
pub const FRAME_READY: u8 = 1;
pub const FRAME_PHASE: u8 = 2;
pub const FRAME_FAILED: u8 = 3;
/// The child is entering a phase (so that a kill is attributed to the right one).
pub const FRAME_STARTED: u8 = 4;

/// Largest frame the parent accepts (a prediction vector is rows × classes × 8 bytes).
pub const MAX_FRAME_BYTES: u64 = 1 << 32;

pub struct WireWriter<W: Write>(pub W);

impl<W: Write> WireWriter<W> {
    pub fn u8(&mut self, v: u8) -> io::Result<()> {
        self.0.write_all(&[v])
    }
    pub fn u32(&mut self, v: u32) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.0.write_all(&v.to_le_bytes())
    }
    pub fn bytes(&mut self, v: &[u8]) -> io::Result<()> {
        self.u64(v.len() as u64)?;
        self.0.write_all(v)
    }
    pub fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

pub struct WireReader<R: Read>(pub R);

impl<R: Read> WireReader<R> {
    fn array<const N: usize>(&mut self) -> io::Result<[u8; N]> {
        let mut buf = [0; N];
        self.0.read_exact(&mut buf)?;
        Ok(buf)
    }
    pub fn u8(&mut self) -> io::Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    pub fn u32(&mut self) -> io::Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> io::Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// A length prefix, refused above `max`.
    pub fn len(&mut self, max: u64) -> io::Result<usize> {
        let len = self.u64()?;
        if len > max {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes is too large"),
            ));
        }
        usize::try_from(len)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "length overflows"))
    }
    pub fn bytes(&mut self, max: u64) -> io::Result<Vec<u8>> {
        let len = self.len(max)?;
        let mut buf = vec![0; len];
        self.0.read_exact(&mut buf)?;
        Ok(buf)
    }
    pub fn inner(&mut self) -> &mut R {
        &mut self.0
    }
}

/// Little-endian f64 values from bytes.
pub fn bytes_to_f64s(bytes: &[u8]) -> Vec<f64> {
    bytes
        .chunks_exact(8)
        .map(|chunk| {
            f64::from_le_bytes([
                chunk[0], chunk[1], chunk[2], chunk[3], chunk[4], chunk[5], chunk[6], chunk[7],
            ])
        })
        .collect()
}
