//! The hooks win the link: read from this test binary's own ELF symbol
//! tables (`/proc/self/exe`) that every hooked libc name is defined in the
//! binary itself, by spindle, and imported from no shared library
//! (`cargo test --release --features hook --test hook_link`). CI runs it
//! linked by lld (x86_64's default linker since Rust 1.90) and by GNU ld
//! (`cargo rustc ... -- -C linker-features=-lld`, and on aarch64).
//!
//! This checks what the linker did, independently of
//! `spindle::hook::installed()`, which compares addresses from inside the
//! program (and is checked here too).

use std::collections::HashMap;

/// Every libc name spindle's hook defines (its `link()` list).
const HOOKED: [&str; 27] = [
    "read",
    "readv",
    "recv",
    "recvfrom",
    "recvmsg",
    "write",
    "writev",
    "send",
    "sendto",
    "sendmsg",
    "connect",
    "accept",
    "accept4",
    "poll",
    "ppoll",
    "nanosleep",
    "clock_nanosleep",
    "sleep",
    "usleep",
    "fcntl",
    "fcntl64",
    "ioctl",
    "setsockopt",
    "close",
    "dup",
    "dup2",
    "dup3",
];

const SHT_SYMTAB: u32 = 2;
const SHT_DYNSYM: u32 = 11;
const SHN_UNDEF: u16 = 0;
const STT_FUNC: u8 = 2;
const STB_GLOBAL: u8 = 1;

/// One ELF symbol, as much of it as the test needs.
#[derive(Clone, Copy, Debug)]
struct Symbol {
    /// Section index; `SHN_UNDEF` for an import.
    shndx: u16,
    /// `st_info`: binding (high nibble) and type (low nibble).
    info: u8,
    /// Link-time address.
    value: u64,
}

/// A little-endian ELF64 file (x86_64 and AArch64 Linux are both).
struct Elf<'a>(&'a [u8]);

impl Elf<'_> {
    fn u16(&self, at: usize) -> u16 {
        u16::from_le_bytes(self.0[at..at + 2].try_into().unwrap())
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.0[at..at + 4].try_into().unwrap())
    }
    fn u64(&self, at: usize) -> u64 {
        u64::from_le_bytes(self.0[at..at + 8].try_into().unwrap())
    }

    fn check_header(&self) {
        assert_eq!(&self.0[..4], b"\x7fELF", "not an ELF file");
        assert_eq!(self.0[4], 2, "not ELF64");
        assert_eq!(self.0[5], 1, "not little-endian");
    }

    /// `(sh_type, sh_offset, sh_size, sh_link, sh_entsize)` of every section.
    fn sections(&self) -> Vec<(u32, usize, usize, u32, usize)> {
        let shoff = self.u64(0x28) as usize;
        let shentsize = self.u16(0x3A) as usize;
        let shnum = self.u16(0x3C) as usize;
        (0..shnum)
            .map(|i| {
                let h = shoff + i * shentsize;
                (
                    self.u32(h + 4),
                    self.u64(h + 24) as usize,
                    self.u64(h + 32) as usize,
                    self.u32(h + 40),
                    self.u64(h + 56) as usize,
                )
            })
            .collect()
    }

    /// The symbols of the first section of type `kind`, by name, each name
    /// with every entry it has. `None` if there is no such section.
    fn symbols(&self, kind: u32) -> Option<HashMap<String, Vec<Symbol>>> {
        let sections = self.sections();
        let &(_, off, size, link, entsize) = sections.iter().find(|s| s.0 == kind)?;
        let (_, str_off, str_size, _, _) = sections[link as usize];
        let strings = &self.0[str_off..str_off + str_size];
        let mut out: HashMap<String, Vec<Symbol>> = HashMap::new();
        for e in (off..off + size).step_by(entsize) {
            let name_at = self.u32(e) as usize;
            let end = strings[name_at..].iter().position(|&b| b == 0).unwrap();
            let name = String::from_utf8_lossy(&strings[name_at..name_at + end]).into_owned();
            out.entry(name).or_default().push(Symbol {
                shndx: self.u16(e + 6),
                info: self.0[e + 4],
                value: self.u64(e + 8),
            });
        }
        Some(out)
    }
}

/// The address the hook for `name` has in this process, through the
/// program's own reference to it (the libc crate's declaration).
fn runtime_address(name: &str) -> usize {
    let f: *const () = match name {
        "read" => libc::read as *const (),
        "readv" => libc::readv as *const (),
        "recv" => libc::recv as *const (),
        "recvfrom" => libc::recvfrom as *const (),
        "recvmsg" => libc::recvmsg as *const (),
        "write" => libc::write as *const (),
        "writev" => libc::writev as *const (),
        "send" => libc::send as *const (),
        "sendto" => libc::sendto as *const (),
        "sendmsg" => libc::sendmsg as *const (),
        "connect" => libc::connect as *const (),
        "accept" => libc::accept as *const (),
        "accept4" => libc::accept4 as *const (),
        "poll" => libc::poll as *const (),
        "ppoll" => libc::ppoll as *const (),
        "nanosleep" => libc::nanosleep as *const (),
        "clock_nanosleep" => libc::clock_nanosleep as *const (),
        "sleep" => libc::sleep as *const (),
        "usleep" => libc::usleep as *const (),
        "fcntl" => libc::fcntl as *const (),
        "ioctl" => libc::ioctl as *const (),
        "setsockopt" => libc::setsockopt as *const (),
        "close" => libc::close as *const (),
        "dup" => libc::dup as *const (),
        "dup2" => libc::dup2 as *const (),
        "dup3" => libc::dup3 as *const (),
        // The libc crate declares no `fcntl64` on every target.
        _ => return 0,
    };
    f as usize
}

#[test]
fn every_hooked_symbol_is_defined_in_the_binary_and_imported_from_nowhere() {
    spindle::run(|| assert!(spindle::hook::installed()));
    let bytes = std::fs::read("/proc/self/exe").expect("read /proc/self/exe");
    let elf = Elf(&bytes);
    elf.check_header();
    let symtab = elf.symbols(SHT_SYMTAB).expect(
        "the test binary has no .symtab (stripped?): build tests without `strip`, \
         as cargo's test profiles do",
    );
    let dynsym = elf.symbols(SHT_DYNSYM).unwrap_or_default();

    // The load bias of this (position-independent) executable: the same
    // for every symbol it defines.
    let mut bias = None;
    for name in HOOKED {
        let defined: Vec<&Symbol> = symtab
            .get(name)
            .into_iter()
            .flatten()
            .filter(|s| s.shndx != SHN_UNDEF)
            .collect();
        let [sym] = defined[..] else {
            panic!("`{name}`: expected one definition in .symtab, found {defined:?}");
        };
        assert_eq!(sym.info & 0xF, STT_FUNC, "`{name}` is not a function");
        assert_eq!(sym.info >> 4, STB_GLOBAL, "`{name}` is not global");
        assert!(
            !symtab
                .get(name)
                .unwrap()
                .iter()
                .any(|s| s.shndx == SHN_UNDEF),
            "`{name}` is also an undefined reference in .symtab"
        );
        if let Some(entries) = dynsym.get(name) {
            assert!(
                entries.iter().all(|s| s.shndx != SHN_UNDEF),
                "`{name}` is imported from a shared library (.dynsym): \
                 the program's calls bind to libc's, not the hook"
            );
        }
        let at = runtime_address(name);
        if at != 0 {
            let b = at.wrapping_sub(sym.value as usize);
            assert_eq!(
                *bias.get_or_insert(b),
                b,
                "`{name}`: the program's reference does not reach the definition in .symtab"
            );
        }
    }
    // And that definition is this binary's: the bias is where the kernel
    // loaded the executable (its program headers' address, less their
    // offset in the file).
    // SAFETY: getauxval only reads the auxiliary vector.
    let phdr = unsafe { libc::getauxval(libc::AT_PHDR) } as usize;
    let phoff = elf.u64(0x20) as usize;
    let first_load_vaddr = first_load_vaddr(&elf);
    assert_eq!(
        bias,
        Some(phdr - phoff - first_load_vaddr),
        "the hooks resolve outside the executable"
    );
}

/// The virtual address of the first `PT_LOAD` segment less its file
/// offset (0 for a PIE; the link address for a fixed-address executable).
fn first_load_vaddr(elf: &Elf<'_>) -> usize {
    let phoff = elf.u64(0x20) as usize;
    let phentsize = elf.u16(0x36) as usize;
    let phnum = elf.u16(0x38) as usize;
    (0..phnum)
        .map(|i| phoff + i * phentsize)
        .find(|&h| elf.u32(h) == 1) // PT_LOAD
        .map(|h| (elf.u64(h + 16) - elf.u64(h + 8)) as usize) // p_vaddr - p_offset
        .expect("no PT_LOAD segment")
}
