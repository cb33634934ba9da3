/*
 * What Xen is: its version, capabilities and features (XENVER_*).
 *
 * Guest types: pv64 pv32pae pvh32
 */
#include <probe/check.h>
#include <probe/errno.h>
#include <probe/string.h>
#include <probe/xen.h>
#include <xen/features.h>
#include <xen/version.h>

#include <arch/guest.h>
#include <arch/hypercall.h>

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
        detail_add(d,
                   "XENVER_version " RC_FMT ", XENVER_extraversion " RC_FMT
                   ", XENVER_capabilities " RC_FMT,
                   RC_ARGS(version), RC_ARGS(extra_rc), RC_ARGS(caps_rc));
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
    detail_add(d,
               strstr(caps, "xen-3.0-x86_32p")
                   ? "; 32-bit PV guests run here"
                   : "; no xen-3.0-x86_32p: 32-bit PV guests cannot run here");
    return CHECK_OK;
}
PROBE_CHECK(010, "xen-version", check_xen_version);

static enum check_status check_features(struct detail *d)
{
#define FEATURE(name) [XENFEAT_##name] = #name
    static const char *const names[] = {
        FEATURE(writable_page_tables),
        FEATURE(writable_descriptor_tables),
        FEATURE(auto_translated_physmap),
        FEATURE(supervisor_mode_kernel),
        FEATURE(pae_pgdir_above_4gb),
        FEATURE(mmu_pt_update_preserve_ad),
        FEATURE(highmem_assist),
        FEATURE(gnttab_map_avail_bits),
        FEATURE(hvm_callback_vector),
        FEATURE(hvm_safe_pvclock),
        FEATURE(hvm_pirqs),
        FEATURE(dom0),
        FEATURE(memory_op_vnode_supported),
        FEATURE(ARM_SMCCC_supported),
        FEATURE(linux_rsdp_unrestricted),
        FEATURE(not_direct_mapped),
        FEATURE(direct_mapped),
    };
#undef FEATURE
    /*
     * The amd64_xen_pv branch lists these in its FEATURES note without '!',
     * i.e. it can use them but does not require them: on PV it updates page
     * and descriptor tables through hypercalls either way.
     */
    static const unsigned int optional[] = {
        XENFEAT_writable_page_tables,
        XENFEAT_writable_descriptor_tables,
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
    /* The branch's pmap hands Xen machine frames: translation breaks it. */
    if ( GUEST_DIRECT_PAGING &&
         info.submap & (1U << XENFEAT_auto_translated_physmap) )
    {
        detail_add(d,
                   "; auto_translated_physmap: the branch needs direct paging");
        return CHECK_FAIL;
    }
    /* A PVH kernel (FreeBSD's GENERIC) takes its events as a vector. */
    if ( !GUEST_DIRECT_PAGING &&
         !(info.submap & (1U << XENFEAT_hvm_callback_vector)) )
    {
        detail_add(d, "; no hvm_callback_vector: no event upcall for PVH");
        return CHECK_FAIL;
    }
    return CHECK_OK;
}
PROBE_CHECK(020, "features", check_features);
