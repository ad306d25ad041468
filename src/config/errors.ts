import { FleetError } from '../errors.js'

/** A setting has a value Fleet cannot use; the message names the setting, the value and what to write. */
export class ConfigError extends FleetError {
  static override code = 'FLEET_E_CONFIG_INVALID'
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly reason: string,
    readonly source: string,
    options?: ErrorOptions,
  ) {
    super(`${setting}=${JSON.stringify(value)} (from ${source}) is invalid: ${reason}`, options)
  }
}

/** A setting that Fleet no longer reads was given; the message says what to use instead. */
export class RemovedSettingError extends FleetError {
  static override code = 'FLEET_E_CONFIG_REMOVED'
  constructor(
    readonly setting: string,
    readonly replacement: string,
  ) {
    super(`${setting} is no longer supported: ${replacement}`)
  }
}

/** A setting the command needs was not given; the message says what it is for and how to give it. */
export class ConfigMissingError extends FleetError {
  static override code = 'FLEET_E_CONFIG_MISSING'
  constructor(
    readonly setting: string,
    need: string,
  ) {
    super(`${setting} is not set: ${need}`)
  }
}
