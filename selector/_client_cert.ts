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

/** The labels OpenSSL (node:tls) reads a CA from: `openssl x509 -trustout` writes TRUSTED. */
const CERTIFICATE =
  /-----BEGIN ((?:TRUSTED |X509 )?CERTIFICATE)-----[^]*?-----END \1-----/g;
const BEGIN = /-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----/g;
/** Arrays of CA certificates checked already: a crawl passes one per request. */
const checkedCas = new WeakSet<readonly string[]>();

/**
 * Checks that `caCerts` is an array of PEM strings, each holding one or more
 * whole certificates that parse: TLS would otherwise fail every handshake with
 * "unable to verify the first certificate" (and Deno 2.9.6's `node:tls` print
 * a line of its own) for a bundle it cannot read.
 *
 * @param action What the error message says could not be done, e.g. "fetch".
 * @throws {TypeError} If it is not such an array.
 */
export function checkCaCerts(caCerts: unknown, action: string): void {
  if (Array.isArray(caCerts) && checkedCas.has(caCerts)) return;
  if (!Array.isArray(caCerts)) {
    throw new TypeError(
      `Cannot ${action}: caCerts must be an array of PEM certificates`,
    );
  }
  caCerts.forEach((pem: unknown, i) => {
    const text = typeof pem === "string" ? pem : "";
    const blocks = text.match(CERTIFICATE);
    // A block cut short (a truncated file) has a BEGIN and no END.
    if (blocks === null || blocks.length !== text.match(BEGIN)!.length) {
      throw new TypeError(
        `Cannot ${action}: caCerts[${i}] is not PEM certificates (each from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----)`,
      );
    }
    for (const block of blocks) {
      // A TRUSTED block carries its trust settings after the certificate,
      // which X509Certificate does not read: OpenSSL checks it.
      if (block.startsWith("-----BEGIN TRUSTED")) continue;
      try {
        new X509Certificate(block.replace(/(BEGIN|END) X509 /g, "$1 "));
      } catch (cause) {
        throw new TypeError(
          `Cannot ${action}: caCerts[${i}] holds a certificate that does not parse`,
          { cause },
        );
      }
    }
  });
  checkedCas.add(caCerts);
}
