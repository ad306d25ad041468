/** The certificate and key files of TLS at the edge, read for either engine. */
import fs from 'node:fs'
import { ConfigMissingError } from '../config/errors.js'

/** Reads the PEM files, with a coded error naming the setting when one cannot be read. */
export function readTlsFiles(files: { certFile: string; keyFile: string }): { cert: Buffer; key: Buffer } {
  const read = (file: string, setting: string): Buffer => {
    try {
      return fs.readFileSync(file)
    } catch (err) {
      throw new ConfigMissingError(setting, `cannot read ${file}: ${(err as Error).message}`)
    }
  }
  return { cert: read(files.certFile, 'FLEET_LB_TLS_CERT'), key: read(files.keyFile, 'FLEET_LB_TLS_KEY') }
}
