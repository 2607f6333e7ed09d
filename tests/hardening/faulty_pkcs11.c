/*
 * A PKCS#11 module that forwards every call to a real module (SoftHSM2) and starts failing
 * once a trigger file exists: the HSM being revoked, unplugged or partitioned away mid-run.
 *
 *   FAULTY_PKCS11_REAL     path of the real module (required)
 *   FAULTY_PKCS11_TRIGGER  path of the trigger file; while it exists, C_OpenSession, C_Login,
 *                          C_SignInit, C_Sign, C_SignUpdate and C_SignFinal return
 *                          CKR_DEVICE_REMOVED
 *
 * Built by tests/hardening/test_faults_hsm.py with the system C compiler. Test-only code.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef unsigned long CK_RV;
typedef unsigned long CK_ULONG;
typedef struct { unsigned char major, minor; } CK_VERSION;
typedef void (*CK_FUNC)(void);
/* CK_FUNCTION_LIST: a version, then 68 function pointers in the order fixed by PKCS#11 2.x. */
typedef struct { CK_VERSION version; CK_FUNC f[68]; } CK_FUNCTION_LIST;
typedef CK_RV (*GetFunctionList)(CK_FUNCTION_LIST **);

enum { OPEN_SESSION = 12, LOGIN = 18, SIGN_INIT = 42, SIGN = 43, SIGN_UPDATE = 44, SIGN_FINAL = 45 };
#define CKR_DEVICE_REMOVED 0x32UL
#define CKR_GENERAL_ERROR 0x05UL

static CK_FUNCTION_LIST wrapped;
static CK_FUNCTION_LIST *real;

static int revoked(void) {
    const char *trigger = getenv("FAULTY_PKCS11_TRIGGER");
    return trigger != NULL && access(trigger, F_OK) == 0;
}

/* The wrapped functions take different arguments; the ABI passes them through unchanged, so
 * each wrapper takes six words and forwards them all (no PKCS#11 call used here takes more). */
typedef CK_RV (*F6)(CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG, CK_ULONG);
#define WRAP(name, idx) \
    static CK_RV name(CK_ULONG a, CK_ULONG b, CK_ULONG c, CK_ULONG d, CK_ULONG e, CK_ULONG f) { \
        if (revoked()) return CKR_DEVICE_REMOVED; \
        return ((F6)real->f[idx])(a, b, c, d, e, f); \
    }
WRAP(w_open_session, OPEN_SESSION)
WRAP(w_login, LOGIN)
WRAP(w_sign_init, SIGN_INIT)
WRAP(w_sign, SIGN)
WRAP(w_sign_update, SIGN_UPDATE)
WRAP(w_sign_final, SIGN_FINAL)

static CK_RV get_function_list(CK_FUNCTION_LIST **out);

CK_RV C_GetFunctionList(CK_FUNCTION_LIST **out) { return get_function_list(out); }

static CK_RV get_function_list(CK_FUNCTION_LIST **out) {
    if (real == NULL) {
        const char *path = getenv("FAULTY_PKCS11_REAL");
        void *handle = path ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
        GetFunctionList gfl = handle ? (GetFunctionList)dlsym(handle, "C_GetFunctionList") : NULL;
        if (gfl == NULL || gfl(&real) != 0 || real == NULL) return CKR_GENERAL_ERROR;
        memcpy(&wrapped, real, sizeof(wrapped));
        wrapped.f[3] = (CK_FUNC)C_GetFunctionList;
        wrapped.f[OPEN_SESSION] = (CK_FUNC)w_open_session;
        wrapped.f[LOGIN] = (CK_FUNC)w_login;
        wrapped.f[SIGN_INIT] = (CK_FUNC)w_sign_init;
        wrapped.f[SIGN] = (CK_FUNC)w_sign;
        wrapped.f[SIGN_UPDATE] = (CK_FUNC)w_sign_update;
        wrapped.f[SIGN_FINAL] = (CK_FUNC)w_sign_final;
    }
    *out = &wrapped;
    return 0;
}
