/** The registry's errors: what a process refuses to announce. */
import { FleetError } from '../errors.js'
import { redactRedisUrl } from '../redis/url.js'

/**
 * The address a process would publish in the registry is one that other machines cannot reach (loopback
 * while it listens beyond loopback), or there is none to choose; the message names the setting to set.
 */
export class AdvertiseAddressError extends FleetError {
  static override code = 'FLEET_E_REGISTRY_ADVERTISE_ADDRESS'
}

/** The store Redis that holds the registry cannot be reached (`fleet status --fleet`). */
export class RegistryUnavailableError extends FleetError {
  static override code = 'FLEET_E_REGISTRY_UNAVAILABLE'
  constructor(url: string, options?: ErrorOptions) {
    super(`the registry's store Redis (${redactRedisUrl(url)}) cannot be reached`, options)
  }
}
