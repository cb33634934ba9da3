#include <probe/boot.h>
#include <probe/checks.h>
#include <probe/cmdline.h>
#include <probe/console.h>
#include <probe/errno.h>
#include <probe/string.h>
#include <xen/features.h>
#include <xen/version.h>

#include <arch/guest.h>
#include <arch/hypercall.h>
#include <arch/page.h>

void detail_add(struct detail *d, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    d->len += vformat(d->text + d->len, sizeof(d->text) - d->len, fmt, ap);
    va_end(ap);
}

void detail_add_escaped(struct detail *d, const char *s, size_t max)
{
    for ( ; max && *s; s++, max-- )
        if ( *s >= ' ' && *s <= '~' && *s != '\\' && *s != '"' )
            detail_add(d, "%c", *s);
        else
            detail_add(d, "\\x%02x", (unsigned char)*s);
}

static enum check_status check_xen_version(struct detail *d)
{
    static xen_extraversion_t extra;
    static xen_capabilities_info_t caps;
    long version = hypervisor_xen_version(XENVER_version, NULL);
    long extra_rc = hypervisor_xen_version(XENVER_extraversion, extra);
    long caps_rc = hypervisor_xen_version(XENVER_capabilities, caps);
    size_t len;

    if ( version < 0 || extra_rc < 0 || caps_rc < 0 )
    {
        detail_add(d, "XENVER_version " RC_FMT ", XENVER_extraversion " RC_FMT
                   ", XENVER_capabilities " RC_FMT, RC_ARGS(version),
                   RC_ARGS(extra_rc), RC_ARGS(caps_rc));
        return CHECK_FAIL;
    }
    caps[sizeof(caps) - 1] = '\0';
    /* Xen leaves a space after the last capability. */
    for ( len = strlen(caps); len && caps[len - 1] == ' '; len-- )
        caps[len - 1] = '\0';
    detail_add(d, "%ld.%ld", version >> 16, version & 0xffff);
    detail_add_escaped(d, extra, sizeof(extra));
    detail_add(d, " capabilities \"");
    detail_add_escaped(d, caps, sizeof(caps));
    detail_add(d, "\"");
    if ( !strstr(caps, GUEST_TYPE) )
    {
        detail_add(d, ": this Xen runs no " GUEST_TYPE_NAME " guests");
        return CHECK_FAIL;
    }
    /* What FreeBSD's i386 XEN kernel, the older port, needs. */
    detail_add(d, strstr(caps, "xen-3.0-x86_32p") ? "; 32-bit PV guests run here"
               : "; no xen-3.0-x86_32p: 32-bit PV guests cannot run here");
    return CHECK_OK;
}

static enum check_status check_features(struct detail *d)
{
#define FEATURE(name) [XENFEAT_##name] = #name
    static const char *const names[] = {
        FEATURE(writable_page_tables), FEATURE(writable_descriptor_tables),
        FEATURE(auto_translated_physmap), FEATURE(supervisor_mode_kernel),
        FEATURE(pae_pgdir_above_4gb), FEATURE(mmu_pt_update_preserve_ad),
        FEATURE(highmem_assist), FEATURE(gnttab_map_avail_bits),
        FEATURE(hvm_callback_vector), FEATURE(hvm_safe_pvclock),
        FEATURE(hvm_pirqs), FEATURE(dom0),
        FEATURE(memory_op_vnode_supported), FEATURE(ARM_SMCCC_supported),
        FEATURE(linux_rsdp_unrestricted), FEATURE(not_direct_mapped),
        FEATURE(direct_mapped),
    };
#undef FEATURE
    /*
     * The amd64_xen_pv branch lists these in its FEATURES note without '!',
     * i.e. it can use them but does not require them: on PV it updates page
     * and descriptor tables through hypercalls either way.
     */
    static const unsigned int optional[] = {
        XENFEAT_writable_page_tables, XENFEAT_writable_descriptor_tables,
    };
    xen_feature_info_t info = { .submap_idx = 0 };
    long rc = hypervisor_xen_version(XENVER_get_features, &info);
    unsigned int bit;

    if ( rc < 0 )
    {
        detail_add(d, "XENVER_get_features refused (" RC_FMT ")", RC_ARGS(rc));
        return CHECK_FAIL;
    }
    detail_add(d, "submap 0x%08x:", info.submap);
    for ( bit = 0; bit < 32; bit++ )
        if ( info.submap & (1U << bit) )
        {
            if ( bit < sizeof(names) / sizeof(names[0]) && names[bit] )
                detail_add(d, " %s", names[bit]);
            else
                detail_add(d, " bit%u", bit);
        }
    detail_add(d, "; branch-optional:");
    for ( bit = 0; bit < sizeof(optional) / sizeof(optional[0]); bit++ )
        detail_add(d, " %s=%s", names[optional[bit]],
                   info.submap & (1U << optional[bit]) ? "present" : "absent");
    /* The branch's pmap hands Xen machine frames: a translated guest breaks it. */
    if ( info.submap & (1U << XENFEAT_auto_translated_physmap) )
    {
        detail_add(d, "; auto_translated_physmap: the branch needs direct paging");
        return CHECK_FAIL;
    }
    return CHECK_OK;
}

static enum check_status check_start_info(struct detail *d)
{
    const start_info_t *si = xen_start_info;
    enum check_status status = CHECK_OK;

    detail_add(d, "magic \"");
    detail_add_escaped(d, si->magic, sizeof(si->magic));
    detail_add(d, "\" nr_pages %lu (%lu MiB) flags 0x%x%s%s shared_info 0x%lx"
               " pt_base 0x%lx nr_pt_frames %lu mfn_list 0x%lx"
               " store mfn 0x%lx evtchn %u cmdline \"",
               si->nr_pages, si->nr_pages >> (20 - PAGE_SHIFT), si->flags,
               si->flags & SIF_PRIVILEGED ? " privileged" : "",
               si->flags & SIF_INITDOMAIN ? " initdomain" : "",
               si->shared_info, si->pt_base, si->nr_pt_frames, si->mfn_list,
               (unsigned long)si->store_mfn, si->store_evtchn);
    detail_add_escaped(d, cmdline(), MAX_GUEST_CMDLINE);
    detail_add(d, "\"");

    if ( strncmp(si->magic, GUEST_TYPE, sizeof(GUEST_TYPE) - 1) )
    {
        detail_add(d, ": magic is not " GUEST_TYPE);
        status = CHECK_FAIL;
    }
    if ( !si->nr_pages || !si->pt_base || !si->mfn_list )
    {
        detail_add(d, ": nr_pages, pt_base and mfn_list must be set");
        status = CHECK_FAIL;
    }
    return status;
}

static enum check_status check_console_ring(struct detail *d)
{
    if ( is_initial_domain() )
    {
        detail_add(d, "dom0 has no console ring; output goes through console_io");
        return CHECK_SKIP;
    }
    detail_add(d, "mfn 0x%lx evtchn %u: this output came through it",
               (unsigned long)xen_start_info->console.domU.mfn,
               xen_start_info->console.domU.evtchn);
    return CHECK_OK;
}

static enum check_status check_console_io(struct detail *d)
{
    /* A zero-length write: XSM decides before anything is printed. */
    long rc = hypervisor_console_io(CONSOLEIO_write, 0, "");

    if ( rc )
        detail_add(d, "denied (" RC_FMT "): earliest printk output of a FreeBSD"
                   " kernel will not appear", RC_ARGS(rc));
    else if ( is_initial_domain() )
        detail_add(d, "permitted (0): dom0, the probe's own output uses it");
    else
        detail_add(d, "permitted (0): earliest printk output of a FreeBSD kernel"
                   " will appear on Xen's console");
    return CHECK_OK;
}

bool checks_run(struct detail *failed)
{
    static const struct {
        const char *name;
        check_fn run;
    } checks[] = {
        { "xen-version", check_xen_version },
        { "features", check_features },
        { "start-info", check_start_info },
        { "console-ring", check_console_ring },
        { "console-io", check_console_io },
        { "bsd-symtab", check_bsd_symtab },
        { "linear-pt", check_linear_pt },
        { "evtchn-upcall", check_evtchn_upcall },
        { "timer", check_timer },
        { "trap-syscall", check_trap_syscall },
        { "trap-user-int", check_trap_user_int },
        { "trap-int3", check_trap_int3 },
        { "trap-single-step", check_trap_single_step },
        { "trap-watchpoint", check_trap_watchpoint },
    };
    static const char *const status_names[] = {
        [CHECK_OK] = "ok", [CHECK_FAIL] = "fail", [CHECK_SKIP] = "skip",
    };
    static struct detail d;
    bool ok = true;
    unsigned int i;

    for ( i = 0; i < sizeof(checks) / sizeof(checks[0]); i++ )
    {
        enum check_status status;

        d.len = 0;
        d.text[0] = '\0';
        status = checks[i].run(&d);
        console_printf("PROBE check %s %s %s\n", checks[i].name,
                       status_names[status], d.len ? d.text : "-");
        if ( status == CHECK_FAIL )
        {
            detail_add(failed, " %s", checks[i].name);
            ok = false;
        }
    }
    return ok;
}
