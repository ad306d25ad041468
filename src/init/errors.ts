import { FleetError } from '../errors.js'

/** `fleet init` writes into an empty (or new) folder only: it never overwrites a file of yours. */
export class InitFolderNotEmptyError extends FleetError {
  static override code = 'FLEET_E_INIT_FOLDER_NOT_EMPTY'
  constructor(folder: string, entries: readonly string[]) {
    const shown =
      entries.slice(0, 5).join(', ') + (entries.length > 5 ? `, and ${entries.length - 5} more` : '')
    super(`${folder} is not empty (${shown}): give a new folder, e.g. \`fleet init my-app\``)
  }
}

/** The project's name is also its app's name: 1-40 lower-case letters, digits and dashes. */
export class InitNameInvalidError extends FleetError {
  static override code = 'FLEET_E_INIT_NAME_INVALID'
  constructor(name: string) {
    super(
      `${JSON.stringify(name)} cannot name the project: use 1-40 lower-case letters, digits and dashes, starting with a letter (--name)`,
    )
  }
}

/** `npm install` in the new project failed (its output is above); the files are written. */
export class InitInstallFailedError extends FleetError {
  static override code = 'FLEET_E_INIT_INSTALL_FAILED'
  constructor(folder: string, exit: string) {
    super(
      `npm install in ${folder} failed (${exit}); its output is above. The files are written: fix, then run npm install there`,
    )
  }
}
