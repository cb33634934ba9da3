/*
 * LD_PRELOAD shim for Debian's makefs: readdir() returns a directory's
 * entries sorted by name.
 *
 * makefs lays out inodes, blocks and directory entries in readdir() order,
 * and that order is a property of the staging file system (ext4 hashes names
 * with a per-file-system seed, tmpfs returns creation order), so without this
 * the same files give different images on different machines.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

struct sorted {
    DIR *dir;
    struct dirent *entries;
    size_t count, next;
    struct sorted *link;
};

static struct sorted *open_dirs;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct dirent *)a)->d_name,
                  ((const struct dirent *)b)->d_name);
}

typedef struct dirent *readdir_fn(DIR *);

static readdir_fn *real_readdir_fn(void)
{
    static readdir_fn *fn;

    if ( fn == NULL )
        fn = (readdir_fn *)dlsym(RTLD_NEXT, "readdir");
    return fn;
}

/*
 * Reads the whole directory on first use. Out of memory aborts: falling
 * back to the unsorted order would silently break reproducibility.
 */
static struct sorted *load(DIR *dir)
{
    struct sorted *s;
    struct dirent *e;
    size_t cap = 0;

    for ( s = open_dirs; s != NULL; s = s->link )
        if ( s->dir == dir )
            return s;
    if ( (s = calloc(1, sizeof(*s))) == NULL )
        abort();
    s->dir = dir;
    while ( (e = real_readdir_fn()(dir)) != NULL )
    {
        if ( s->count == cap )
        {
            cap = cap ? cap * 2 : 16;
            s->entries = realloc(s->entries, cap * sizeof(*s->entries));
            if ( s->entries == NULL )
                abort();
        }
        s->entries[s->count++] = *e;
    }
    qsort(s->entries, s->count, sizeof(*s->entries), by_name);
    s->link = open_dirs;
    open_dirs = s;
    return s;
}

struct dirent *readdir(DIR *dir)
{
    struct sorted *s = load(dir);

    return s->next < s->count ? &s->entries[s->next++] : NULL;
}

int closedir(DIR *dir)
{
    static int (*real_closedir)(DIR *);
    struct sorted **p;

    for ( p = &open_dirs; *p != NULL; p = &(*p)->link )
    {
        if ( (*p)->dir == dir )
        {
            struct sorted *s = *p;

            *p = s->link;
            free(s->entries);
            free(s);
            break;
        }
    }
    if ( real_closedir == NULL )
        real_closedir = (int (*)(DIR *))dlsym(RTLD_NEXT, "closedir");
    return real_closedir(dir);
}

/*
 * The large-file name for the same call (struct dirent64 has the layout of
 * struct dirent on LP64), for a makefs built with _FILE_OFFSET_BITS=64.
 */
struct dirent64 *readdir64(DIR *dir)
{
    return ((struct dirent64 *)readdir(dir));
}
