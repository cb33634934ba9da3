#include <probe/main.h>
#include <probe/string.h>
#include <xen/arch-x86/cpuid.h>
#include <xen/hvm/params.h>
#include <xen/memory.h>

#include <arch/guest.h>
#include <arch/hypercall.h>
#include <arch/page.h>
#include <arch/pvh.h>
#include <arch/traps.h>
#include <arch/upcall.h>

/* Present, ring 0, 32-bit interrupt gate: IF cleared on entry. */
#define GATE_INTERRUPT 0x8e
#define IDT_ENTRIES    256

struct idt_gate {
    uint16_t offset_low, selector;
    uint8_t zero, type;
    uint16_t offset_high;
};

extern char probe_trap_db[], probe_trap_bp[], probe_trap_ud[], probe_trap_gp[],
    probe_trap_pf[], probe_trap_soft[], probe_trap_int80[];

const struct hvm_start_info *pvh_start_info;
static start_info_t start_info;
static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(8)));
static uint8_t shared_info_page[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));

static void cpuid(uint32_t leaf, uint32_t regs[4])
{
    __asm__ volatile("cpuid"
                     : "=a"(regs[0]), "=b"(regs[1]), "=c"(regs[2]),
                       "=d"(regs[3])
                     : "0"(leaf), "2"(0));
}

/*
 * Xen's CPUID leaves (at 0x40000000, or 0x100 further up when it shows
 * Viridian's first): leaf 2 names the MSR a write of the hypercall page's
 * address to which fills it. Without one the probe cannot say anything.
 */
static void install_hypercall_page(void)
{
    uint32_t base, regs[4];

    for ( base = XEN_CPUID_FIRST_LEAF; base < XEN_CPUID_FIRST_LEAF + 0x10000;
          base += 0x100 )
    {
        cpuid(base, regs);
        if ( regs[1] == XEN_CPUID_SIGNATURE_EBX &&
             regs[2] == XEN_CPUID_SIGNATURE_ECX &&
             regs[3] == XEN_CPUID_SIGNATURE_EDX )
        {
            cpuid(base + 2, regs);
            __asm__ volatile("wrmsr" ::"c"(regs[1]),
                             "a"((uint32_t)(unsigned long)hypercall_page),
                             "d"(0));
            return;
        }
    }
    for ( ;; )
        __asm__ volatile("cli; hlt");
}

static void set_gate(unsigned int vector, const void *entry)
{
    unsigned long offset = (unsigned long)entry;

    idt[vector] = (struct idt_gate){ .offset_low = offset & 0xffff,
                                     .selector = PVH_KERNEL_CS,
                                     .type = GATE_INTERRUPT,
                                     .offset_high = offset >> 16 };
}

/* The same stubs a PV probe gives Xen's trap table, and the upcall. */
static void install_idt(void)
{
    static const struct {
        uint16_t limit;
        uint32_t base;
    } __attribute__((packed))
    idtr = { sizeof(idt) - 1, (uint32_t)(unsigned long)idt };

    set_gate(1, probe_trap_db);
    set_gate(3, probe_trap_bp);
    set_gate(6, probe_trap_ud);
    set_gate(13, probe_trap_gp);
    set_gate(14, probe_trap_pf);
    set_gate(TRAP_SOFT_INT, probe_trap_soft);
    set_gate(TRAP_INT80, probe_trap_int80);
    set_gate(UPCALL_VECTOR, probe_upcall_entry);
    __asm__ volatile("lidt %0" ::"m"(idtr));
}

/* Xen's shared info page at a frame of ours (PV gets it mapped). */
static unsigned long map_shared_info(void)
{
    struct xen_add_to_physmap map = {
        .domid = DOMID_SELF,
        .space = XENMAPSPACE_shared_info,
        .idx = 0,
        .gpfn = (unsigned long)shared_info_page >> PAGE_SHIFT,
    };

    if ( hypervisor_memory_op(XENMEM_add_to_physmap, &map) )
        return 0;
    return (unsigned long)shared_info_page;
}

void pvh_start(const struct hvm_start_info *hsi)
{
    domid_t self = DOMID_SELF;
    uint64_t pfn = 0, port = 0;
    long pages;

    install_hypercall_page();
    install_idt();
    pvh_start_info = hsi;

    memcpy(start_info.magic, GUEST_TYPE, sizeof(GUEST_TYPE));
    start_info.flags = hsi->flags;
    start_info.shared_info = map_shared_info();
    pages = hypervisor_memory_op(XENMEM_current_reservation, &self);
    start_info.nr_pages = pages > 0 ? pages : 0;
    if ( !hvm_param_get(HVM_PARAM_CONSOLE_PFN, &pfn) &&
         !hvm_param_get(HVM_PARAM_CONSOLE_EVTCHN, &port) )
    {
        start_info.console.domU.mfn = pfn;
        start_info.console.domU.evtchn = port;
    }
    if ( hsi->cmdline_paddr )
    {
        const char *line = (const char *)(unsigned long)hsi->cmdline_paddr;
        size_t n = 0;

        while ( n < sizeof(start_info.cmd_line) - 1 && line[n] )
            n++;
        memcpy(start_info.cmd_line, line, n);
    }
    probe_main(&start_info);
}

void *frame_map(void *spare, xen_pfn_t frame)
{
    (void)spare;
    return frame ? (void *)(frame << PAGE_SHIFT) : NULL;
}
