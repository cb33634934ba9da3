/*
 * BSD_SYMTAB "yes" asks the domain builder to load the symbol and string
 * tables after the image, behind a small ELF header (Xen's libelf,
 * elf_load_bsdsyms): a 32-bit size at the first word boundary (8 bytes on
 * pv64, 4 on pv32) after the image's end, then an ELF header with three
 * sections (null, symtab, strtab), offsets relative to that header.
 * FreeBSD's ddb names functions from it. The probe finds its own
 * probe_main there.
 *
 * Guest types: pv64 pv32pae
 */
#include <probe/check.h>
#include <probe/elf.h>
#include <probe/main.h>
#include <probe/string.h>

/* Beyond this the header is garbage rather than a table of a tiny kernel. */
#define MAX_TABLE_BYTES (16UL << 20)

extern char _end[];

static enum check_status check_bsd_symtab(struct detail *d)
{
    const char *start =
        (const char *)(((unsigned long)_end + sizeof(long) - 1) &
                       ~(sizeof(long) - 1));
    const char *ehdr = start + sizeof(uint32_t);
    const char *strtab;
    elf_ehdr_t eh;
    elf_shdr_t sh[3];
    uint32_t size;
    unsigned long i, count, found = 0;

    memcpy(&size, start, sizeof(size));
    memcpy(&eh, ehdr, sizeof(eh));
    if ( memcmp(eh.e_ident, ELF_MAGIC, 4) )
    {
        detail_add(d,
                   "no ELF header at 0x%lx: the loader ignored BSD_SYMTAB,"
                   " ddb would have no symbol names",
                   (unsigned long)start);
        return CHECK_FAIL;
    }
    if ( eh.e_shnum != 3 || eh.e_shentsize != sizeof(elf_shdr_t) ||
         eh.e_shoff > MAX_TABLE_BYTES )
    {
        detail_add(
            d, "header at 0x%lx has %u sections of %u bytes, expected 3 of %zu",
            (unsigned long)start, eh.e_shnum, eh.e_shentsize,
            sizeof(elf_shdr_t));
        return CHECK_FAIL;
    }
    memcpy(sh, ehdr + eh.e_shoff, sizeof(sh));
    if ( sh[1].sh_type != SHT_SYMTAB || sh[2].sh_type != SHT_STRTAB ||
         sh[1].sh_offset + sh[1].sh_size > MAX_TABLE_BYTES ||
         sh[2].sh_offset + sh[2].sh_size > MAX_TABLE_BYTES )
    {
        detail_add(d, "sections at 0x%lx are not a symtab and a strtab",
                   (unsigned long)start);
        return CHECK_FAIL;
    }

    strtab = ehdr + sh[2].sh_offset;
    count = sh[1].sh_size / sizeof(elf_sym_t);
    for ( i = 0; i < count && !found; i++ )
    {
        elf_sym_t sym;

        memcpy(&sym, ehdr + sh[1].sh_offset + i * sizeof(sym), sizeof(sym));
        if ( sym.st_name < sh[2].sh_size &&
             !strncmp(strtab + sym.st_name, "probe_main",
                      sh[2].sh_size - sym.st_name) )
            found = sym.st_value;
    }

    detail_add(d, "%lu symbols in %u bytes at 0x%lx; probe_main ", count, size,
               (unsigned long)start);
    if ( found != (unsigned long)probe_main )
    {
        detail_add(d, "0x%lx, expected 0x%lx", found,
                   (unsigned long)probe_main);
        return CHECK_FAIL;
    }
    detail_add(d, "found at 0x%lx", found);
    return CHECK_OK;
}
PROBE_CHECK(060, "bsd-symtab", check_bsd_symtab);
