/**
 * The check of a client certificate and its key, before any connection: TLS
 * would otherwise send a request with no certificate at all for PEM it cannot
 * read, or fail the handshake with a message that names neither.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

/** The pair checked last: a crawl checks one pair per request, at 0.5 ms each. */
let checked: { cert: string; key: string } | null = null;

/**
 * Checks that `cert` holds a PEM certificate (the first of a chain is the
 * client's own), `key` a PEM private key, and that the key is that
 * certificate's. (A mismatched key also leaves `node:tls`'s socket open in
 * Deno 2.9.6 when the handshake fails on it: nothing closes it.)
 *
 * @param action What the error message says could not be done, e.g. "fetch".
 * @throws {TypeError} If either does not parse, or they do not match.
 */
export function checkClientCert(
  cert: string,
  key: string,
  action: string,
): void {
  if (checked !== null && checked.cert === cert && checked.key === key) return;
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(cert);
  } catch (cause) {
    throw new TypeError(
      `Cannot ${action}: cert is not a PEM certificate (chain)`,
      { cause },
    );
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (cause) {
    throw new TypeError(
      `Cannot ${action}: key is not an unencrypted PEM private key`,
      { cause },
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new TypeError(
      `Cannot ${action}: key is not the private key of cert (the first certificate of the chain)`,
    );
  }
  checked = { cert, key };
}
