/**
 * A throwaway certificate authority for tests: a CA and the server certificates it signs, made with `openssl`
 * (EC P-256 keys, valid 2 days) in a temporary folder that `cleanup()` removes.
 */
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export interface IssuedCert {
  /** PEM of the certificate (the leaf only). */
  certFile: string
  /** PEM of its private key (unencrypted). */
  keyFile: string
}

export interface TestCa {
  readonly dir: string
  /** PEM of the CA's certificate: what a client trusts. */
  readonly caFile: string
  /**
   * A certificate for `names` (subjectAltName entries: `IP:127.0.0.1`, `DNS:localhost`), signed by this CA;
   * `name` names its files.
   */
  issue(name: string, names?: readonly string[]): IssuedCert
  /** Removes the folder (and every key in it). */
  cleanup(): void
}

/** Makes a CA in a new temporary folder (`prefix` names it). */
export function makeTestCa(prefix = 'fleet-ca-'): TestCa {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  const run = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' })
  const ecKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  try {
    run(
      'req',
      '-x509',
      ...ecKey,
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '2',
      '-subj',
      '/CN=Fleet test CA',
    )
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw err
  }
  return {
    dir,
    caFile: path.join(dir, 'ca.pem'),
    issue(name, names = ['IP:127.0.0.1', 'DNS:localhost']) {
      const ext = `${name}.ext`
      fs.writeFileSync(path.join(dir, ext), `subjectAltName=${names.join(',')}\n`)
      run('req', ...ecKey, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`)
      run(
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-CAcreateserial',
        '-days',
        '2',
        '-extfile',
        ext,
        '-out',
        `${name}.pem`,
      )
      return { certFile: path.join(dir, `${name}.pem`), keyFile: path.join(dir, `${name}.key`) }
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true })
    },
  }
}
