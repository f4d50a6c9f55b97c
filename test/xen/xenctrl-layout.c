/*
 * Prints, as JSON, what the installed Xen headers say about the structs and constants
 * src/xen/xenctrl-layout.ts hard-codes, plus sample structs filled through the headers' own
 * field names (hex), so the TypeScript decoders can be checked against real C layouts.
 * Built and run by xenctrl-layout.test.ts.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <xenctrl.h>

static void hex(const char *name, const void *p, size_t n, const char *sep)
{
    const unsigned char *b = p;
    printf("\"%s\":\"", name);
    for (size_t i = 0; i < n; i++)
        printf("%02x", b[i]);
    printf("\"%s\n", sep);
}

int main(void)
{
    xc_physinfo_t pi;
    xc_domaininfo_t di[2];

    printf("{\n");
    printf("\"interfaces\":{\"domctl\":%d,\"sysctl\":%d},\n",
           XEN_DOMCTL_INTERFACE_VERSION, XEN_SYSCTL_INTERFACE_VERSION);
    printf("\"physinfo\":{\"size\":%zu,\"totalPages\":%zu,\"freePages\":%zu,\"scrubPages\":%zu,"
           "\"outstandingPages\":%zu},\n",
           sizeof(xc_physinfo_t), offsetof(xc_physinfo_t, total_pages),
           offsetof(xc_physinfo_t, free_pages), offsetof(xc_physinfo_t, scrub_pages),
           offsetof(xc_physinfo_t, outstanding_pages));
    printf("\"domaininfo\":{\"size\":%zu,\"domain\":%zu,\"flags\":%zu,\"totPages\":%zu,"
           "\"maxPages\":%zu,\"outstandingPages\":%zu},\n",
           sizeof(xc_domaininfo_t), offsetof(xc_domaininfo_t, domain),
           offsetof(xc_domaininfo_t, flags), offsetof(xc_domaininfo_t, tot_pages),
           offsetof(xc_domaininfo_t, max_pages), offsetof(xc_domaininfo_t, outstanding_pages));
    printf("\"dominf\":{\"dying\":%d,\"hvm\":%d,\"shutdown\":%d,\"paused\":%d,"
           "\"shutdownShift\":%d,\"shutdownMask\":%d},\n",
           _XEN_DOMINF_dying, _XEN_DOMINF_hvm_guest, _XEN_DOMINF_shutdown, _XEN_DOMINF_paused,
           XEN_DOMINF_shutdownshift, XEN_DOMINF_shutdownmask);
    printf("\"xenver\":{\"version\":%d,\"extraversion\":%d,\"extraversionLen\":%zu},\n",
           XENVER_version, XENVER_extraversion, sizeof(xen_extraversion_t));
    printf("\"domidFirstReserved\":%d,\n", DOMID_FIRST_RESERVED);

    memset(&pi, 0xa5, sizeof(pi));
    pi.total_pages = 0x123456789ULL;
    pi.free_pages = 400000;
    pi.scrub_pages = 3000;
    pi.outstanding_pages = 20;
    hex("samplePhysinfo", &pi, sizeof(pi), ",");

    memset(di, 0x5a, sizeof(di));
    di[0].domain = 7;
    di[0].flags = XEN_DOMINF_shutdown | XEN_DOMINF_paused | XEN_DOMINF_running |
                  (3u << XEN_DOMINF_shutdownshift);
    di[0].tot_pages = 32768;
    di[0].max_pages = 65792;
    di[0].outstanding_pages = 5;
    di[1].domain = 0x7fef;
    di[1].flags = XEN_DOMINF_dying | XEN_DOMINF_hvm_guest | XEN_DOMINF_blocked;
    di[1].tot_pages = 1;
    di[1].max_pages = 0xffffffffffULL;
    di[1].outstanding_pages = 0;
    hex("sampleDomaininfo", di, sizeof(di), "");
    printf("}\n");
    return 0;
}
