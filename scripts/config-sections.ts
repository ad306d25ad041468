/** The application settings that docs/configuration.md documents after Fleet's own: the default app's. */
import { shopSettings } from '../apps/shop/settings.js'

export const appSections = [{ title: 'The demo shop (`apps/shop`, the default app)', specs: shopSettings }]
