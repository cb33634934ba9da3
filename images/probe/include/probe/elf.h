/*
 * The bits of the ELF format (System V gABI) the bsd-symtab check reads, in
 * the guest's own class: Xen's loader hands a kernel its symbols in the
 * class of its image (ELF-64 for pv64, ELF-32 for pv32).
 */
#ifndef PROBE_ELF_H
#define PROBE_ELF_H

#include <stdint.h>

#define ELF_MAGIC  "\177ELF"
#define SHT_SYMTAB 2
#define SHT_STRTAB 3

#ifdef __x86_64__
typedef uint64_t elf_word_t;
#else
typedef uint32_t elf_word_t;
#endif

typedef struct {
    unsigned char e_ident[16];
    uint16_t e_type, e_machine;
    uint32_t e_version;
    elf_word_t e_entry, e_phoff, e_shoff;
    uint32_t e_flags;
    uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} elf_ehdr_t;

typedef struct {
    uint32_t sh_name, sh_type;
    elf_word_t sh_flags, sh_addr, sh_offset, sh_size;
    uint32_t sh_link, sh_info;
    elf_word_t sh_addralign, sh_entsize;
} elf_shdr_t;

/* The two classes order a symbol's fields differently. */
typedef struct {
    uint32_t st_name;
#ifdef __x86_64__
    unsigned char st_info, st_other;
    uint16_t st_shndx;
    uint64_t st_value, st_size;
#else
    uint32_t st_value, st_size;
    unsigned char st_info, st_other;
    uint16_t st_shndx;
#endif
} elf_sym_t;

#endif
